//! Durable state: ingress idempotency, delivery de-duplication, the dead-letter parking lot and the audit log.
//! (stub — being implemented)
