//! The verified-token cache: reuse within `exp`, never across a key-set
//! change, bounded size, rules still checked on every request.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use scopegate::identity::cache::{Cached, TokenCache};
use scopegate::identity::validate::{KeyStore, Keys, NoRemoteKeys};
use scopegate::jose::jwks::{self, KeySet};
use scopegate::policy::config::Config;
use scopegate::request::decision::{decide_cached, Request};
use scopegate::vocab::reason::{Denial, Reason};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;
use support::*;

fn run_cached(
    cfg: &Config,
    store: &dyn KeyStore,
    cache: &mut TokenCache,
    path: &str,
    token: &str,
    now: u64,
) -> Reason {
    let owned = bearer(token);
    let headers = scopegate::request::decision::borrow_headers(&owned);
    decide_cached(
        cfg,
        &Request::new("GET", path, &headers),
        store,
        Some(cache),
        now,
    )
    .reason
}

#[test]
fn a_repeated_token_is_a_hit_with_the_same_identity() {
    let cfg = config();
    let mut cache = TokenCache::new(16);
    let t = rs256(&claims("payments:read"));
    let owned = bearer(&t);
    let headers = scopegate::request::decision::borrow_headers(&owned);
    let req = Request::new("GET", "/payments/1", &headers);
    let first = decide_cached(&cfg, &req, &NoRemoteKeys, Some(&mut cache), NOW);
    let second = decide_cached(&cfg, &req, &NoRemoteKeys, Some(&mut cache), NOW);
    assert_eq!(
        (first.reason, second.reason),
        (Reason::Allowed, Reason::Allowed)
    );
    assert_eq!((cache.hits, cache.misses), (1, 1));
    assert!(
        Rc::ptr_eq(
            first.identity.as_ref().unwrap(),
            second.identity.as_ref().unwrap()
        ),
        "a hit reuses the parsed identity"
    );
}

#[test]
fn rules_are_checked_on_every_hit() {
    let cfg = config();
    let mut cache = TokenCache::new(16);
    let t = rs256(&claims("payments:read"));
    assert_eq!(
        run_cached(&cfg, &NoRemoteKeys, &mut cache, "/payments/1", &t, NOW),
        Reason::Allowed
    );
    assert_eq!(
        run_cached(&cfg, &NoRemoteKeys, &mut cache, "/admin/x", &t, NOW),
        Reason::ClientNotAllowed
    );
    assert_eq!(cache.hits, 1);
}

#[test]
fn an_entry_is_never_used_past_exp() {
    let cfg = config();
    let mut cache = TokenCache::new(16);
    let t = rs256(&claims("payments:read")); // exp = NOW + 600, skew 60
    assert_eq!(
        run_cached(&cfg, &NoRemoteKeys, &mut cache, "/payments", &t, NOW),
        Reason::Allowed
    );
    assert_eq!(
        run_cached(&cfg, &NoRemoteKeys, &mut cache, "/payments", &t, NOW + 660),
        Reason::Allowed
    );
    assert_eq!(
        run_cached(&cfg, &NoRemoteKeys, &mut cache, "/payments", &t, NOW + 661),
        Reason::TokenExpired
    );
    assert_eq!(cache.len(), 0, "the stale entry is dropped");
}

/// A remote key store whose key set can be swapped, as a refresh would.
struct Swappable(RefCell<Rc<KeySet>>);

impl KeyStore for Swappable {
    fn keys(&self, _provider: usize) -> Keys {
        Keys::Ready(Rc::clone(&self.0.borrow()))
    }
}

fn key_set(kids: &[&str]) -> Rc<KeySet> {
    let keys: Vec<Value> = kids
        .iter()
        .map(|k| keys().rsa.public_jwk(Some(k)))
        .collect();
    Rc::new(jwks::parse_value(&json!({ "keys": keys })).unwrap().0)
}

#[test]
fn a_key_set_change_invalidates_entries() {
    let mut doc = base_config();
    doc["providers"][0]["jwks"] = json!({"uri": "https://idp.example.com/jwks", "cluster": "idp"});
    let cfg = config_from(&doc);
    let store = Swappable(RefCell::new(key_set(&["rsa1"])));
    let mut cache = TokenCache::new(16);
    let t = rs256(&claims("payments:read"));
    assert_eq!(
        run_cached(&cfg, &store, &mut cache, "/payments", &t, NOW),
        Reason::Allowed
    );
    assert_eq!(
        run_cached(&cfg, &store, &mut cache, "/payments", &t, NOW),
        Reason::Allowed
    );
    assert_eq!(cache.hits, 1);
    // The issuer rotates rsa1 out: the cached verdict must not outlive it.
    *store.0.borrow_mut() = key_set(&["rsa2"]);
    assert_eq!(
        run_cached(&cfg, &store, &mut cache, "/payments", &t, NOW),
        Reason::KeyNotFound
    );
    assert_eq!(cache.hits, 1);
}

#[test]
fn bad_signatures_are_remembered_for_the_same_keys() {
    let cfg = config();
    let mut cache = TokenCache::new(16);
    let t = rs256(&claims("payments:read"));
    let forged = format!(
        "{}.{}",
        t.rsplit_once('.').unwrap().0,
        scopegate::jose::base64url::encode(&[7u8; 256])
    );
    assert_eq!(
        run_cached(&cfg, &NoRemoteKeys, &mut cache, "/payments", &forged, NOW),
        Reason::SignatureInvalid
    );
    assert_eq!(
        run_cached(&cfg, &NoRemoteKeys, &mut cache, "/payments", &forged, NOW),
        Reason::SignatureInvalid
    );
    assert_eq!(cache.hits, 1);
}

#[test]
fn the_cache_is_bounded_and_can_be_off() {
    let cfg = config();
    let mut cache = TokenCache::new(8);
    for i in 0..20 {
        let t = rs256(&with(
            claims("payments:read"),
            "jti",
            json!(format!("j{i}")),
        ));
        assert_eq!(
            run_cached(&cfg, &NoRemoteKeys, &mut cache, "/payments", &t, NOW),
            Reason::Allowed
        );
        assert!(cache.len() <= 8);
    }
    let mut off = TokenCache::new(0);
    let t = rs256(&claims("payments:read"));
    run_cached(&cfg, &NoRemoteKeys, &mut off, "/payments", &t, NOW);
    run_cached(&cfg, &NoRemoteKeys, &mut off, "/payments", &t, NOW);
    assert_eq!((off.len(), off.hits), (0, 0));
}

#[test]
fn a_hit_needs_the_exact_token() {
    // Same length, same prefix, one byte apart: never the other's entry.
    let keys = key_set(&["rsa1"]);
    let mut cache = TokenCache::new(16);
    let a = format!("{}.{}.AAAA", "x".repeat(40), "y".repeat(40));
    let b = format!("{}.{}.AAAB", "x".repeat(40), "y".repeat(40));
    cache.insert(
        &a,
        Cached::Invalid(Denial::new(Reason::SignatureInvalid, "bad")),
        0,
        &keys,
        NOW + 60,
    );
    let current = |_: usize| Some(Rc::clone(&keys));
    assert!(cache.get(&b, current, NOW).is_none());
    assert!(cache.get(&a, current, NOW).is_some());
    assert_eq!((cache.hits, cache.misses), (1, 1));
}

#[test]
fn the_cache_holds_at_most_its_byte_budget_of_tokens() {
    let keys = key_set(&["rsa1"]);
    let mut cache = TokenCache::new(8); // 8 entries, 8 x 2 KiB of tokens
    let budget = 8 * scopegate::identity::cache::BYTES_PER_ENTRY;
    for i in 0..40 {
        let token = format!("{i:04}.{}.sig", "p".repeat(6000));
        cache.insert(
            &token,
            Cached::Invalid(Denial::new(Reason::SignatureInvalid, "bad")),
            0,
            &keys,
            NOW + 60,
        );
        assert!(cache.bytes() <= budget, "{} > {budget}", cache.bytes());
        assert!(cache.len() <= 8);
    }
    assert_eq!(cache.len(), 2, "6 KB tokens: two fit in 16 KiB");
    let huge = "h".repeat(budget + 1);
    cache.insert(
        &huge,
        Cached::Invalid(Denial::new(Reason::SignatureInvalid, "bad")),
        0,
        &keys,
        NOW + 60,
    );
    assert!(
        cache.bytes() <= budget,
        "a token over the whole budget is not kept"
    );
}
