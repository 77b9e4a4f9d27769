//! Issue 3: a message that crashes its consumer cannot loop forever (quorum-queue delivery limit → parked with
//! reason `delivery_limit`), and a slow receiver sees at most `bus.prefetch` deliveries at once (back-pressure,
//! not unbounded memory).

mod common;

use async_trait::async_trait;
use common::*;
use lienthong_bus::adapter::{AdapterFactory, Built, Delivery, DeliveryError, Sink};
use lienthong_bus::config::{AdapterSpec, Config, Problem};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The real factory plus a test-only adapter type `crash` whose sink panics on every delivery.
struct WithCrash(Arc<AtomicUsize>);

struct Crash(Arc<AtomicUsize>);

#[async_trait]
impl Sink for Crash {
    async fn deliver(&self, _: &Delivery) -> Result<(), DeliveryError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("test adapter crashes on purpose");
    }
}

impl AdapterFactory for WithCrash {
    fn types(&self) -> Vec<&'static str> {
        let mut t = lienthong_adapters::Factory.types();
        t.push("crash");
        t
    }
    fn check(
        &self,
        spec: &AdapterSpec,
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<Problem> {
        if spec.kind == "crash" {
            vec![]
        } else {
            lienthong_adapters::Factory.check(spec, config, env)
        }
    }
    fn build(
        &self,
        spec: &AdapterSpec,
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Built, Vec<Problem>> {
        if spec.kind == "crash" {
            Ok(Built {
                sink: Some(Arc::new(Crash(self.0.clone()))),
                ..Built::default()
            })
        } else {
            lienthong_adapters::Factory.build(spec, config, env)
        }
    }
}

#[tokio::test]
async fn a_message_that_crashes_its_consumer_is_parked_after_the_delivery_limit() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let bus = TestBus::start_custom(
        "poison",
        AMQP,
        &|h| h.replace("shutdown_timeout = \"5s\"", "shutdown_timeout = \"5s\"\ndelivery_limit = 3"),
        "[[adapters]]\nid = \"crashy\"\ntype = \"crash\"\n[[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"crashy\"]\n",
        std::sync::Arc::new(WithCrash(attempts.clone())),
    )
    .await;
    let id = new_id();
    let (s, a) = bus
        .post("H40", &envelope(Some(&id), H40, &[STP], dossier("P-1")))
        .await;
    assert_eq!(s, 202, "{a}");
    let entry = bus.first_parked(Duration::from_secs(30)).await;
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["reason"], "delivery_limit");
    assert_eq!(entry["adapter"], "crashy");
    // 1 delivery + 3 redeliveries, then RabbitMQ dead-letters it: it did not loop forever.
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert_eq!(
        bus.bus
            .context
            .broker
            .queue_depth(&bus.names().deliver_queue("crashy"))
            .await,
        Some(0)
    );
    bus.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_gets_at_most_prefetch_deliveries_at_once() {
    use axum::extract::State;
    #[derive(Default)]
    struct Gauge {
        now: AtomicUsize,
        max: AtomicUsize,
        done: AtomicUsize,
    }
    async fn slow(State(g): State<Arc<Gauge>>) -> &'static str {
        let n = g.now.fetch_add(1, Ordering::SeqCst) + 1;
        g.max.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        g.now.fetch_sub(1, Ordering::SeqCst);
        g.done.fetch_add(1, Ordering::SeqCst);
        "ok"
    }
    let gauge = Arc::new(Gauge::default());
    let app = axum::Router::new().fallback(slow).with_state(gauge.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let bus = TestBus::start_custom(
        "slow",
        AMQP,
        &|h| h.replace("shutdown_timeout = \"5s\"", "shutdown_timeout = \"5s\"\nprefetch = 4"),
        &format!(
            "[[adapters]]\nid = \"slow\"\ntype = \"webhook\"\nurl = \"http://{addr}/in\"\n[[routes]]\nid = \"r\"\ntypes = [\"dossier.submitted\"]\ndeliver = [\"slow\"]\n"
        ),
        std::sync::Arc::new(lienthong_adapters::Factory),
    )
    .await;
    for i in 0..40 {
        let (s, _) = bus
            .post(
                "H40",
                &envelope(Some(&new_id()), H40, &[STP], dossier(&format!("S-{i}"))),
            )
            .await;
        assert_eq!(s, 202);
    }
    let g = gauge.clone();
    wait_for("40 slow deliveries", Duration::from_secs(60), move || {
        let g = g.clone();
        async move { (g.done.load(Ordering::SeqCst) >= 40).then_some(()) }
    })
    .await;
    let max = gauge.max.load(Ordering::SeqCst);
    assert!(
        max <= 4,
        "at most prefetch = 4 deliveries in flight, saw {max}"
    );
    assert!(
        max >= 2,
        "deliveries do run concurrently up to the prefetch, saw {max}"
    );
    bus.stop().await;
}
