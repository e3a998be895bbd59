//! Fetch schedule, key rotation, outages, the kid-miss rate limit and the
//! lease that lets workers share one fetch — with an injected clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use scopegate::identity::validate::{Availability, Document};
use scopegate::identity::validate::{KeyStore, Keys};
use scopegate::policy::config::Config;
use scopegate::remote::keyfetch::{
    backoff_ms, refresh_ms, Event, FetchRequest, Fetcher, LocalStore, Response, SharedStore,
};
use serde_json::{json, Value};
use support::*;

const T0: u64 = 1_000_000;

fn remote_config() -> Config {
    let mut doc = base_config();
    doc["providers"][0]["jwks"] = json!({"uri": "https://idp.example.com/jwks", "cluster": "idp", "refresh_interval_s": 300, "timeout_ms": 1500});
    config_from(&doc)
}

fn jwks(kids: &[&str]) -> Vec<u8> {
    let keys: Vec<Value> = kids
        .iter()
        .map(|k| keys().rsa.public_jwk(Some(k)))
        .collect();
    json!({ "keys": keys }).to_string().into_bytes()
}

fn ok(body: &[u8]) -> Response<'_> {
    Response {
        status: Some(200),
        cache_control: None,
        etag: None,
        body,
    }
}

fn state(f: &Fetcher) -> &'static str {
    match f.keys(0) {
        Keys::Ready(_) => "ready",
        Keys::Pending => "pending",
        Keys::Unavailable(_) => "unavailable",
    }
}

fn kids(f: &Fetcher) -> Vec<String> {
    match f.keys(0) {
        Keys::Ready(k) => k.keys().iter().filter_map(|j| j.kid.clone()).collect(),
        _ => Vec::new(),
    }
}

/// Ticks, and starts every requested call with a fresh id.
fn tick(
    f: &mut Fetcher,
    now: u64,
    store: &mut dyn SharedStore,
    next_call: &mut u32,
) -> Vec<(u32, FetchRequest)> {
    let (reqs, _) = f.tick(now, store);
    reqs.into_iter()
        .map(|r| {
            *next_call += 1;
            f.started(r.slot, *next_call, now);
            (*next_call, r)
        })
        .collect()
}

/// A fetcher whose first fetch, at T0, brought keys with these kids.
fn fetched(kids: &[&str]) -> (Fetcher, LocalStore, u32) {
    let cfg = remote_config();
    let mut f = Fetcher::new(&cfg, 1);
    let mut store = LocalStore::default();
    let mut call = 0;
    let (id, _) = tick(&mut f, T0, &mut store, &mut call).remove(0);
    f.completed(id, T0, ok(&jwks(kids)), &mut store);
    (f, store, call)
}

#[test]
fn first_fetch_is_pending_then_ready_and_refreshes_on_schedule() {
    let cfg = remote_config();
    let mut f = Fetcher::new(&cfg, 1);
    let mut store = LocalStore::default();
    let mut call = 0;
    assert_eq!(state(&f), "pending");
    let calls = tick(&mut f, T0, &mut store, &mut call);
    assert_eq!(calls.len(), 1);
    let (id, req) = &calls[0];
    assert_eq!(
        (
            req.cluster.as_str(),
            req.authority.as_str(),
            req.path.as_str(),
            req.scheme
        ),
        ("idp", "idp.example.com", "/jwks", "https")
    );
    assert!(
        tick(&mut f, T0 + 100, &mut store, &mut call).is_empty(),
        "one call at a time"
    );
    let ev = f.completed(*id, T0 + 200, ok(&jwks(&["a"])), &mut store);
    assert!(matches!(ev, Some(Event::Fetched { ref summary, .. }) if summary == "1 usable key(s)"));
    assert_eq!(state(&f), "ready");
    assert!(tick(&mut f, T0 + 299_000, &mut store, &mut call).is_empty());
    assert_eq!(
        tick(&mut f, T0 + 300_200, &mut store, &mut call).len(),
        1,
        "refresh after refresh_interval_s"
    );
}

#[test]
fn rotation_replaces_the_key_set_and_removed_keys_stop_working() {
    let (mut f, mut store, mut call) = fetched(&["old", "new"]);
    assert_eq!(kids(&f), ["old", "new"]);
    let (id, _) = tick(&mut f, T0 + 300_000, &mut store, &mut call).remove(0);
    f.completed(id, T0 + 300_000, ok(&jwks(&["new"])), &mut store);
    assert_eq!(kids(&f), ["new"]);
}

#[test]
fn outages_keep_the_last_good_keys_and_back_off() {
    let (mut f, mut store, mut call) = fetched(&["a"]);
    let empty = br#"{"keys": []}"#;
    let garbage = b"<html>oops</html>";
    let only_hmac = br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#;
    let failures: [(Option<u16>, &[u8]); 5] = [
        (Some(500), b""),
        (None, b""),
        (Some(200), garbage),
        (Some(200), empty),
        (Some(200), only_hmac),
    ];
    let mut now = T0 + 300_000;
    for (i, (status, body)) in failures.into_iter().enumerate() {
        let calls = tick(&mut f, now, &mut store, &mut call);
        assert_eq!(calls.len(), 1, "attempt {i} at {now}");
        let ev = f.completed(
            calls[0].0,
            now,
            Response {
                status,
                cache_control: None,
                etag: None,
                body,
            },
            &mut store,
        );
        assert!(matches!(ev, Some(Event::FetchFailed { .. })), "{ev:?}");
        assert_eq!(kids(&f), ["a"], "last good keys stay in force");
        // The next attempt waits for the back-off, doubling from 1 s.
        let wait = backoff_ms(i as u32 + 1, true, 300);
        assert!(tick(&mut f, now + wait - 1, &mut store, &mut call).is_empty());
        now += wait;
    }
    let (id, _) = tick(&mut f, now, &mut store, &mut call).remove(0);
    f.completed(id, now, ok(&jwks(&["b"])), &mut store);
    assert_eq!(kids(&f), ["b"], "recovers when the issuer is back");
}

#[test]
fn issuer_down_at_start_fails_fast_and_recovers() {
    let cfg = remote_config();
    let mut f = Fetcher::new(&cfg, 1);
    let mut store = LocalStore::default();
    let mut call = 0;
    let (id, _) = tick(&mut f, T0, &mut store, &mut call).remove(0);
    f.completed(
        id,
        T0 + 10,
        Response {
            status: None,
            cache_control: None,
            etag: None,
            body: b"",
        },
        &mut store,
    );
    assert_eq!(state(&f), "unavailable");
    let (id, _) = tick(&mut f, T0 + 1_010, &mut store, &mut call).remove(0);
    assert_eq!(state(&f), "pending", "a retry is under way");
    f.completed(id, T0 + 1_020, ok(&jwks(&["a"])), &mut store);
    assert_eq!(state(&f), "ready");
}

#[test]
fn a_lost_call_times_out_by_itself() {
    let cfg = remote_config();
    let mut f = Fetcher::new(&cfg, 1);
    let mut store = LocalStore::default();
    let mut call = 0;
    tick(&mut f, T0, &mut store, &mut call);
    let (_, events) = f.tick(T0 + 1_500 + 1_000, &mut store);
    assert!(
        matches!(events.as_slice(), [Event::FetchFailed { .. }]),
        "{events:?}"
    );
    assert_eq!(
        f.completed(1, T0 + 2_600, ok(&jwks(&["a"])), &mut store),
        None,
        "late answers are ignored"
    );
}

#[test]
fn kid_misses_refresh_at_most_once_per_interval() {
    let (mut f, mut store, mut call) = fetched(&["a"]);
    let mut fetches = 0;
    // 100 random kids, one a second, starting 10 s after the fetch.
    for i in 0..100u64 {
        let now = T0 + 10_000 + i * 1_000;
        f.kid_miss(0);
        for (id, _) in tick(&mut f, now, &mut store, &mut call) {
            fetches += 1;
            f.completed(id, now, ok(&jwks(&["a"])), &mut store);
        }
    }
    // Misses fetch only once the keys are 30 s old: at T0+30 s, +60 s and +90 s.
    assert_eq!(fetches, 3);
}

#[test]
fn workers_share_one_fetch_through_the_store() {
    let cfg = remote_config();
    let mut store = LocalStore::default();
    let (mut w1, mut w2) = (Fetcher::new(&cfg, 11), Fetcher::new(&cfg, 22));
    let mut call = 0;
    let c1 = tick(&mut w1, T0, &mut store, &mut call);
    let c2 = tick(&mut w2, T0, &mut store, &mut call);
    assert_eq!(
        (c1.len(), c2.len()),
        (1, 0),
        "the lease lets one worker fetch"
    );
    w1.completed(c1[0].0, T0 + 50, ok(&jwks(&["a"])), &mut store);
    let (reqs, events) = w2.tick(T0 + 100, &mut store);
    assert!(reqs.is_empty());
    assert!(matches!(
        events.as_slice(),
        [Event::Adopted { summary, .. }] if summary == "1 usable key(s)"
    ));
    assert_eq!(kids(&w2), ["a"]);
    // The refresh is shared too: exactly one of the two fetches.
    let n = tick(&mut w1, T0 + 300_100, &mut store, &mut call).len()
        + tick(&mut w2, T0 + 300_100, &mut store, &mut call).len();
    assert_eq!(n, 1);
}

#[test]
fn a_failed_fetch_holds_back_every_worker() {
    let cfg = remote_config();
    let mut store = LocalStore::default();
    let (mut w1, mut w2) = (Fetcher::new(&cfg, 11), Fetcher::new(&cfg, 22));
    let mut call = 0;
    let c = tick(&mut w1, T0, &mut store, &mut call);
    w1.completed(
        c[0].0,
        T0,
        Response {
            status: Some(503),
            cache_control: None,
            etag: None,
            body: b"",
        },
        &mut store,
    );
    assert!(
        tick(&mut w2, T0 + 500, &mut store, &mut call).is_empty(),
        "back-off applies to all"
    );
    assert_eq!(tick(&mut w2, T0 + 1_000, &mut store, &mut call).len(), 1);
}

#[test]
fn cache_control_max_age_shortens_the_interval_within_bounds() {
    assert_eq!(refresh_ms(300, None), 300_000);
    assert_eq!(refresh_ms(300, Some("public, max-age=60")), 60_000);
    assert_eq!(refresh_ms(300, Some("max-age=3600")), 300_000);
    assert_eq!(refresh_ms(300, Some("max-age=0")), 10_000);
    assert_eq!(refresh_ms(300, Some("no-cache")), 300_000);
    assert_eq!(refresh_ms(300, Some("max-age=abc")), 300_000);
}

#[test]
fn backoff_doubles_and_is_capped() {
    let seq: Vec<u64> = (1..=7).map(|n| backoff_ms(n, false, 300)).collect();
    assert_eq!(seq, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    assert_eq!(backoff_ms(40, true, 300), 300_000);
    assert_eq!(backoff_ms(40, true, 60), 60_000);
}

#[test]
fn unknown_kids_wait_for_a_refresh_only_when_keys_are_old_enough() {
    let (mut f, mut store, mut call) = fetched(&["a"]);
    let secs = |ms: u64| ms / 1000;
    assert!(!f.refresh_for_unknown_kid(0, secs(T0 + 10_000)));
    assert!(f.refresh_for_unknown_kid(0, secs(T0 + 31_000)));
    // A declined refresh still releases the waiters (generation moves).
    let g = f.generation(Document::Keys(0));
    f.kid_miss(0);
    tick(&mut f, T0 + 10_000, &mut store, &mut call);
    assert!(f.generation(Document::Keys(0)) > g);
}

#[test]
fn waiters_on_another_worker_learn_of_a_failed_first_fetch() {
    let cfg = remote_config();
    let mut store = LocalStore::default();
    let (mut w1, mut w2) = (Fetcher::new(&cfg, 11), Fetcher::new(&cfg, 22));
    let mut call = 0;
    let c = tick(&mut w1, T0, &mut store, &mut call);
    assert!(tick(&mut w2, T0, &mut store, &mut call).is_empty());
    assert_eq!(state(&w2), "pending");
    w1.completed(
        c[0].0,
        T0 + 5,
        Response {
            status: Some(500),
            cache_control: None,
            etag: None,
            body: b"",
        },
        &mut store,
    );
    let g = w2.generation(Document::Keys(0));
    tick(&mut w2, T0 + 10, &mut store, &mut call);
    assert_eq!(state(&w2), "unavailable");
    assert!(w2.generation(Document::Keys(0)) > g);
}

#[test]
fn envoys_own_timeout_answer_is_reported_as_a_timeout() {
    let cfg = remote_config();
    let mut f = Fetcher::new(&cfg, 1);
    let mut store = LocalStore::default();
    let mut call = 0;
    let (id, _) = tick(&mut f, T0, &mut store, &mut call).remove(0);
    let ev = f.completed(
        id,
        T0 + 1_500,
        Response {
            status: Some(504),
            cache_control: None,
            etag: None,
            body: b"upstream request timeout",
        },
        &mut store,
    );
    assert_eq!(
        ev,
        Some(Event::FetchFailed {
            doc: Document::Keys(0),
            why: "no answer within timeout_ms (1500 ms)".into(),
            kept: false
        })
    );
}

fn registry_config() -> Config {
    let mut doc = base_config();
    doc["identities"] = json!({"registry": {"uri": "http://registry.internal:8080/registry.json",
        "cluster": "registry", "refresh_interval_s": 10, "timeout_ms": 1500}});
    config_from(&doc)
}

fn registry_doc(owner: &str) -> Vec<u8> {
    json!({"identities": [{"client_id": "billing-batch", "provider": "corp", "owner": owner}]})
        .to_string()
        .into_bytes()
}

fn owner_of(f: &Fetcher) -> Option<String> {
    match f.registry() {
        Availability::Ready(r) => r.find(0, "billing-batch").map(|e| e.owner.clone()),
        _ => None,
    }
}

fn with_etag<'a>(body: &'a [u8], tag: &'a str) -> Response<'a> {
    Response {
        etag: Some(tag),
        ..ok(body)
    }
}

#[test]
fn the_registry_is_fetched_revalidated_with_its_etag_and_kept_when_a_document_is_bad() {
    let cfg = registry_config();
    let mut f = Fetcher::new(&cfg, 1);
    let mut store = LocalStore::default();
    let mut call = 0;
    assert!(matches!(f.registry(), Availability::Pending));
    let (id, req) = tick(&mut f, T0, &mut store, &mut call).remove(0);
    assert_eq!(req.doc, Document::Registry);
    assert_eq!(
        (req.cluster.as_str(), req.path.as_str(), req.scheme),
        ("registry", "/registry.json", "http")
    );
    assert_eq!(req.if_none_match, None, "nothing to revalidate yet");
    let ev = f.completed(
        id,
        T0,
        with_etag(&registry_doc("a@x"), "\"v1\""),
        &mut store,
    );
    assert!(
        matches!(ev, Some(Event::Fetched { ref summary, .. }) if summary == "1 identities"),
        "{ev:?}"
    );
    assert_eq!(owner_of(&f).as_deref(), Some("a@x"));

    // Due again after refresh_interval_s: asks with If-None-Match, a 304 keeps it.
    let (id, req) = tick(&mut f, T0 + 10_000, &mut store, &mut call).remove(0);
    assert_eq!(req.if_none_match.as_deref(), Some("\"v1\""));
    let not_modified = Response {
        status: Some(304),
        ..ok(b"")
    };
    let ev = f.completed(id, T0 + 10_000, not_modified, &mut store);
    assert_eq!(
        ev,
        Some(Event::NotModified {
            doc: Document::Registry
        })
    );
    assert_eq!(owner_of(&f).as_deref(), Some("a@x"));
    assert!(
        tick(&mut f, T0 + 15_000, &mut store, &mut call).is_empty(),
        "304 resets the schedule"
    );

    // A document with a bad entry is refused whole; the last good registry stays.
    let (id, _) = tick(&mut f, T0 + 20_000, &mut store, &mut call).remove(0);
    let bad = br#"{"identities": [{"client_id": "billing-batch"}]}"#;
    let ev = f.completed(id, T0 + 20_000, ok(bad), &mut store);
    assert!(
        matches!(&ev, Some(Event::FetchFailed { why, .. }) if why.contains("/identities/0: `owner` is required")),
        "{ev:?}"
    );
    assert_eq!(owner_of(&f).as_deref(), Some("a@x"));
}

#[test]
fn a_second_worker_adopts_the_registry_another_fetched() {
    let cfg = registry_config();
    let mut store = LocalStore::default();
    let (mut w1, mut w2) = (Fetcher::new(&cfg, 1), Fetcher::new(&cfg, 2));
    w1.prepare(&mut store);
    w2.prepare(&mut store);
    let mut call = 0;
    let (id, _) = tick(&mut w1, T0, &mut store, &mut call).remove(0);
    assert!(
        tick(&mut w2, T0, &mut store, &mut call).is_empty(),
        "one fetch for both"
    );
    w1.completed(
        id,
        T0,
        with_etag(&registry_doc("b@x"), "\"v2\""),
        &mut store,
    );
    let (reqs, events) = w2.tick(T0 + 200, &mut store);
    assert!(reqs.is_empty());
    assert!(
        matches!(
            events.as_slice(),
            [Event::Adopted {
                doc: Document::Registry,
                ..
            }]
        ),
        "{events:?}"
    );
    assert_eq!(owner_of(&w2).as_deref(), Some("b@x"));
    // The adopter revalidates with the tag it adopted.
    let (_, req) = tick(&mut w2, T0 + 10_000, &mut store, &mut call).remove(0);
    assert_eq!(req.if_none_match.as_deref(), Some("\"v2\""));
}
