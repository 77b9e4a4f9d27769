//! QCVN 102:2016, the Vietnamese standard for exchanging electronic documents between state agencies, as a
//! format crate: agency codes ([`agency`]), and edXML packages with their document status flow ([`edxml`]).
//!
//! It exists apart from the bus so that the format is a library any system can use — a sender that builds
//! packages, a receiver that checks them, a test that reads what came out — without pulling in a message broker.
//! It depends on no part of Liên Thông; the bus plugs it in through its domain layer. The rules it implements are
//! written down in `docs/qcvn102.md` at the repository root.
#![deny(unsafe_code)]

pub mod agency;
pub mod edxml;
