//! The request decision, end to end through the core: every reason code and
//! every rule feature, with real keys and signatures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use scopegate::jose::base64url;
use scopegate::request::decision::Verdict;
use scopegate::vocab::alg::Alg;
use scopegate::vocab::reason::Reason;
use serde_json::{json, Value};
use support::*;

fn reason_of(method: &str, path: &str, headers: &[(String, String)]) -> Reason {
    run(&config(), method, path, headers).reason
}

fn tamper_signature(token: &str) -> String {
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = base64url::decode(sig.as_bytes()).unwrap();
    bytes[0] ^= 1;
    format!("{head}.{}", base64url::encode(&bytes))
}

#[test]
fn allows_a_valid_token_with_the_rule_scope_and_reports_identity() {
    let d = run(
        &config(),
        "GET",
        "/payments/123",
        &bearer(&rs256(&claims("payments:read other"))),
    );
    assert_eq!(d.reason, Reason::Allowed);
    assert!(d.is_allowed());
    assert_eq!(d.rule, Some(1));
    let id = d.identity.expect("identity");
    assert_eq!(id.subject.as_deref(), Some("svc-billing"));
    assert_eq!(id.client_id.as_deref(), Some("billing-batch"));
    assert_eq!(id.issuer, ISSUER);
    assert_eq!(id.scopes, ["payments:read", "other"]);
    assert_eq!(id.claims, [("tenant".to_string(), "t-42".to_string())]);
    assert_eq!(d.rewritten_path, None);
}

#[test]
fn every_algorithm_verifies_with_its_key() {
    let k = keys();
    let c = claims("payments:read");
    let cases = [
        (&k.rsa, Alg::RS256, "rsa1"),
        (&k.rsa, Alg::RS384, "rsa1"),
        (&k.rsa, Alg::RS512, "rsa1"),
        (&k.rsa, Alg::PS256, "rsa1"),
        (&k.rsa, Alg::PS384, "rsa1"),
        (&k.rsa, Alg::PS512, "rsa1"),
        (&k.p256, Alg::ES256, "ec1"),
        (&k.p384, Alg::ES384, "ec2"),
        (&k.ed, Alg::EdDSA, "ed1"),
    ];
    for (key, alg, kid) in cases {
        let t = key.sign(alg, Some(kid), &c).unwrap();
        assert_eq!(
            reason_of("GET", "/payments", &bearer(&t)),
            Reason::Allowed,
            "{alg} with kid"
        );
        let t = key.sign(alg, None, &c).unwrap();
        assert_eq!(
            reason_of("GET", "/payments", &bearer(&t)),
            Reason::Allowed,
            "{alg} without kid"
        );
        assert_eq!(
            reason_of("GET", "/payments", &bearer(&tamper_signature(&t))),
            Reason::SignatureInvalid,
            "{alg} tampered"
        );
    }
}

#[test]
fn public_routes_need_no_token_and_ignore_a_bad_one() {
    assert_eq!(reason_of("GET", "/healthz", &[]), Reason::PublicRoute);
    assert_eq!(
        reason_of("GET", "/healthz", &bearer("garbage")),
        Reason::PublicRoute
    );
    // The method is part of the rule: POST /healthz matches no rule.
    assert_eq!(reason_of("POST", "/healthz", &[]), Reason::RouteNotAllowed);
}

#[test]
fn denials_carry_the_reason_that_explains_them() {
    let good = claims("payments:read");
    let k = keys();
    let hs256 = {
        let h = base64url::encode(br#"{"alg":"HS256","kid":"rsa1"}"#);
        let p = base64url::encode(json!(good).to_string().as_bytes());
        format!("{h}.{p}.{}", base64url::encode(&[1; 32]))
    };
    let none = {
        let h = base64url::encode(br#"{"alg":"none"}"#);
        let p = base64url::encode(json!(good).to_string().as_bytes());
        format!("{h}.{p}.")
    };
    type Case<'a> = (&'a str, Vec<(String, String)>, &'a str, Reason);
    let cases: Vec<Case> = vec![
        ("no token", vec![], "/payments", Reason::TokenMissing),
        (
            "other scheme only",
            vec![("authorization".into(), "Basic dTpw".into())],
            "/payments",
            Reason::TokenMissing,
        ),
        (
            "not a jwt",
            bearer("abc"),
            "/payments",
            Reason::TokenMalformed,
        ),
        (
            "two authorization headers",
            [bearer(&rs256(&good)), bearer(&rs256(&good))].concat(),
            "/payments",
            Reason::RequestMalformed,
        ),
        (
            "two credentials in one header",
            vec![(
                "authorization".into(),
                format!("Bearer {}, Bearer x", rs256(&good)),
            )],
            "/payments",
            Reason::RequestMalformed,
        ),
        (
            "empty bearer",
            vec![("authorization".into(), "Bearer ".into())],
            "/payments",
            Reason::RequestMalformed,
        ),
        (
            "alg none",
            bearer(&none),
            "/payments",
            Reason::UnsupportedAlgorithm,
        ),
        (
            "hmac",
            bearer(&hs256),
            "/payments",
            Reason::UnsupportedAlgorithm,
        ),
        (
            "alg outside the provider's list",
            bearer(
                &k.partner
                    .sign(
                        Alg::PS256,
                        Some("p1"),
                        &with(
                            with(good.clone(), "iss", json!(PARTNER)),
                            "aud",
                            Value::Null,
                        ),
                    )
                    .unwrap(),
            ),
            "/payments",
            Reason::UnsupportedAlgorithm,
        ),
        (
            "unknown issuer",
            bearer(&rs256(&with(
                good.clone(),
                "iss",
                json!("https://evil.example"),
            ))),
            "/payments",
            Reason::IssuerUnknown,
        ),
        (
            "no issuer",
            bearer(&rs256(&with(good.clone(), "iss", Value::Null))),
            "/payments",
            Reason::ClaimMissing,
        ),
        (
            "unknown kid",
            bearer(&k.rsa.sign(Alg::RS256, Some("nope"), &good).unwrap()),
            "/payments",
            Reason::KeyNotFound,
        ),
        (
            "kid of another key type",
            bearer(&k.rsa.sign(Alg::RS256, Some("ec1"), &good).unwrap()),
            "/payments",
            Reason::KeyNotFound,
        ),
        (
            "signed by the wrong key",
            bearer(&k.partner.sign(Alg::RS256, Some("rsa1"), &good).unwrap()),
            "/payments",
            Reason::SignatureInvalid,
        ),
        (
            "expired",
            bearer(&rs256(&with(
                with(good.clone(), "exp", json!(NOW - 61)),
                "iat",
                json!(NOW - 600),
            ))),
            "/payments",
            Reason::TokenExpired,
        ),
        (
            "nbf in the future",
            bearer(&rs256(&with(good.clone(), "nbf", json!(NOW + 61)))),
            "/payments",
            Reason::TokenNotYetValid,
        ),
        (
            "iat in the future",
            bearer(&rs256(&with(good.clone(), "iat", json!(NOW + 61)))),
            "/payments",
            Reason::TokenIssuedInFuture,
        ),
        (
            "lifetime too long",
            bearer(&rs256(&with(
                with(good.clone(), "iat", json!(NOW - 10)),
                "exp",
                json!(NOW + 3600),
            ))),
            "/payments",
            Reason::LifetimeTooLong,
        ),
        (
            "no iat under max_lifetime",
            bearer(&rs256(&with(good.clone(), "iat", Value::Null))),
            "/payments",
            Reason::LifetimeTooLong,
        ),
        (
            "no exp",
            bearer(&rs256(&with(good.clone(), "exp", Value::Null))),
            "/payments",
            Reason::ClaimMissing,
        ),
        (
            "wrong audience",
            bearer(&rs256(&with(good.clone(), "aud", json!("orders-api")))),
            "/payments",
            Reason::AudienceMismatch,
        ),
        (
            "wrong audiences array",
            bearer(&rs256(&with(good.clone(), "aud", json!(["a", "b"])))),
            "/payments",
            Reason::AudienceMismatch,
        ),
        (
            "no audience",
            bearer(&rs256(&with(good.clone(), "aud", Value::Null))),
            "/payments",
            Reason::AudienceMismatch,
        ),
        (
            "scope missing",
            bearer(&rs256(&claims("orders:read"))),
            "/payments",
            Reason::InsufficientScope,
        ),
        (
            "no route",
            bearer(&rs256(&good)),
            "/orders",
            Reason::RouteNotAllowed,
        ),
        (
            "malformed path",
            bearer(&rs256(&good)),
            "/payments/%2e%2e%2fadmin",
            Reason::RequestMalformed,
        ),
        (
            "control char in scope",
            bearer(&rs256(&claims("payments:read\u{7}"))),
            "/payments",
            Reason::TokenMalformed,
        ),
        (
            "control char in subject",
            bearer(&rs256(&with(good.clone(), "sub", json!("a\r\nx-admin: 1")))),
            "/payments",
            Reason::TokenMalformed,
        ),
        (
            "scope of wrong type",
            bearer(&rs256(&with(good.clone(), "scope", json!({"a": 1})))),
            "/payments",
            Reason::TokenMalformed,
        ),
    ];
    for (name, headers, path, want) in cases {
        let d = run(&config(), "GET", path, &headers);
        assert_eq!(d.reason, want, "{name}: {}", d.message());
        assert!(matches!(d.verdict, Verdict::Deny(_)), "{name}");
    }
}

#[test]
fn clock_skew_is_honoured_at_the_edges() {
    let base = with(claims("payments:read"), "iat", json!(NOW - 100));
    let at = |key: &str, v: u64| {
        reason_of(
            "GET",
            "/payments",
            &bearer(&rs256(&with(base.clone(), key, json!(v)))),
        )
    };
    assert_eq!(at("exp", NOW - 60), Reason::Allowed);
    assert_eq!(at("exp", NOW - 61), Reason::TokenExpired);
    assert_eq!(at("nbf", NOW + 60), Reason::Allowed);
    assert_eq!(at("nbf", NOW + 61), Reason::TokenNotYetValid);
    let iat = |v: u64| {
        reason_of(
            "GET",
            "/payments",
            &bearer(&rs256(&with(claims("payments:read"), "iat", json!(v)))),
        )
    };
    assert_eq!(iat(NOW + 60), Reason::Allowed);
    assert_eq!(iat(NOW + 61), Reason::TokenIssuedInFuture);
}

#[test]
fn scopes_come_from_the_first_present_scope_claim() {
    let c = with(
        with(claims(""), "scope", Value::Null),
        "scp",
        json!(["payments:read"]),
    );
    assert_eq!(
        reason_of("GET", "/payments", &bearer(&rs256(&c))),
        Reason::Allowed
    );
    // `scope` is first: its (empty) value wins over `scp`.
    let c = with(claims(""), "scp", json!(["payments:read"]));
    assert_eq!(
        reason_of("GET", "/payments", &bearer(&rs256(&c))),
        Reason::InsufficientScope
    );
    let c = with(claims(""), "scope", json!(["payments:read", 7]));
    assert_eq!(
        reason_of("GET", "/payments", &bearer(&rs256(&c))),
        Reason::TokenMalformed
    );
}

#[test]
fn rule_requirements_all_scopes_any_scope_clients_providers() {
    let refund = |scope: &str| {
        reason_of(
            "POST",
            "/payments/77/refunds",
            &bearer(&rs256(&claims(scope))),
        )
    };
    assert_eq!(refund("payments:write refunds:create"), Reason::Allowed);
    assert_eq!(refund("payments:write"), Reason::InsufficientScope);
    let d = run(
        &config(),
        "POST",
        "/payments/77/refunds",
        &bearer(&rs256(&claims("payments:write"))),
    );
    assert_eq!(
        d.required_scopes.as_deref(),
        Some("payments:write refunds:create")
    );

    let admin = |c: serde_json::Map<String, Value>| {
        reason_of("DELETE", "/admin/users/1", &bearer(&rs256(&c)))
    };
    let ops = with(claims("admin"), "client_id", json!("ops-bot"));
    assert_eq!(admin(ops.clone()), Reason::Allowed);
    assert_eq!(
        admin(with(ops.clone(), "scope", json!("payments:read"))),
        Reason::InsufficientScope
    );
    assert_eq!(admin(claims("admin")), Reason::ClientNotAllowed);
    // Client id from the next claim in order when `client_id` is absent.
    assert_eq!(
        admin(with(
            with(ops.clone(), "client_id", Value::Null),
            "azp",
            json!("ops-bot")
        )),
        Reason::Allowed
    );
    assert_eq!(
        admin(with(ops.clone(), "client_id", Value::Null)),
        Reason::ClientNotAllowed
    );

    let partner = with(
        with(with(ops, "iss", json!(PARTNER)), "aud", Value::Null),
        "iat",
        Value::Null,
    );
    let t = keys()
        .partner
        .sign(Alg::RS256, Some("p1"), &partner)
        .unwrap();
    assert_eq!(
        reason_of("GET", "/admin/x", &bearer(&t)),
        Reason::ProviderNotAllowed
    );
    assert_eq!(
        reason_of("GET", "/feed/today", &bearer(&t)),
        Reason::Allowed
    );
    let corp = rs256(&claims("admin"));
    assert_eq!(
        reason_of("GET", "/feed/today", &bearer(&corp)),
        Reason::ProviderNotAllowed
    );
}

#[test]
fn wildcards_in_rules() {
    let t = rs256(&claims("payments:read"));
    for p in ["/payments", "/payments/", "/payments/1", "/payments/1/2/3"] {
        assert_eq!(reason_of("GET", p, &bearer(&t)), Reason::Allowed, "{p}");
    }
    assert_eq!(
        reason_of("HEAD", "/payments/1", &bearer(&t)),
        Reason::Allowed
    );
    assert_eq!(
        reason_of("PUT", "/payments/1", &bearer(&t)),
        Reason::RouteNotAllowed
    );
    let w = rs256(&claims("payments:write refunds:create"));
    assert_eq!(
        reason_of("POST", "/payments/1/refunds", &bearer(&w)),
        Reason::Allowed
    );
    assert_eq!(
        reason_of("POST", "/payments/refunds", &bearer(&w)),
        Reason::RouteNotAllowed
    );
    assert_eq!(
        reason_of("POST", "/payments/1/2/refunds", &bearer(&w)),
        Reason::RouteNotAllowed
    );
}

#[test]
fn default_action_deny_authenticate_allow() {
    let t = rs256(&claims("x"));
    let mut doc = base_config();
    assert_eq!(
        reason_of("GET", "/other", &bearer(&t)),
        Reason::RouteNotAllowed
    );
    doc["default_action"] = json!("authenticate");
    let cfg = config_from(&doc);
    assert_eq!(
        run(&cfg, "GET", "/other", &bearer(&t)).reason,
        Reason::Allowed
    );
    assert_eq!(run(&cfg, "GET", "/other", &[]).reason, Reason::TokenMissing);
    doc["default_action"] = json!("allow");
    let cfg = config_from(&doc);
    assert_eq!(run(&cfg, "GET", "/other", &[]).reason, Reason::PublicRoute);
    // Matched rules still apply under `allow`.
    assert_eq!(
        run(&cfg, "GET", "/payments", &[]).reason,
        Reason::TokenMissing
    );
}

#[test]
fn path_tricks_never_reach_a_route_the_scopes_do_not_cover() {
    let t = bearer(&rs256(&claims("payments:read")));
    let cases = [
        // These resolve to /admin/x, whose rule the token does not satisfy.
        ("/admin/x", Reason::ClientNotAllowed),
        ("/payments/../admin/x", Reason::ClientNotAllowed),
        ("/payments/%2e%2e/admin/x", Reason::ClientNotAllowed),
        ("/payments/.%2E/admin/x", Reason::ClientNotAllowed),
        ("//admin/x", Reason::ClientNotAllowed),
        ("/payments/./../admin//x", Reason::ClientNotAllowed),
        ("/payments/..%2fadmin", Reason::RequestMalformed),
        ("/payments/%2e%2e%5cadmin", Reason::RequestMalformed),
        ("/payments\\..\\admin", Reason::RequestMalformed),
        ("/payments/%252e%252e/admin", Reason::RequestMalformed),
        ("/payments;/../admin", Reason::RequestMalformed),
        ("/payments/%00/../../admin", Reason::RequestMalformed),
        ("/Admin/x", Reason::RouteNotAllowed),
    ];
    for (path, want) in cases {
        let d = run(&config(), "GET", path, &t);
        assert_eq!(d.reason, want, "{path}: {}", d.message());
        assert!(!d.is_allowed(), "{path}");
    }
}

#[test]
fn normalized_paths_are_what_is_forwarded() {
    let t = bearer(&rs256(&claims("payments:read")));
    let cases = [
        ("/payments/./123", Some("/payments/123")),
        ("/payments//123", Some("/payments/123")),
        ("/payments/abc/../123", Some("/payments/123")),
        (
            "/payments/%31%32%33?a=1&b=%2F",
            Some("/payments/123?a=1&b=%2F"),
        ),
        ("/payments/123?x=1", None),
    ];
    for (path, want) in cases {
        let d = run(&config(), "GET", path, &t);
        assert_eq!(d.reason, Reason::Allowed, "{path}");
        assert_eq!(d.rewritten_path.as_deref(), want, "{path}");
    }
}

#[test]
fn bearer_scheme_is_case_insensitive() {
    let t = rs256(&claims("payments:read"));
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let h = vec![("authorization".to_string(), format!("{scheme} {t}"))];
        assert_eq!(
            reason_of("GET", "/payments", &h),
            Reason::Allowed,
            "{scheme}"
        );
    }
}

#[test]
fn query_token_source_and_one_token_only() {
    let mut doc = base_config();
    doc["token_sources"] =
        json!([{"header": "authorization", "prefix": "Bearer "}, {"query": "access_token"}]);
    doc["forward_token"] = json!(false);
    let cfg = config_from(&doc);
    let t = rs256(&claims("payments:read"));
    let d = run(
        &cfg,
        "GET",
        &format!("/payments?a=1&access_token={t}&b=2"),
        &[],
    );
    assert_eq!(d.reason, Reason::Allowed);
    assert_eq!(
        d.rewritten_path.as_deref(),
        Some("/payments?a=1&b=2"),
        "token is not forwarded"
    );
    let both = run(
        &cfg,
        "GET",
        &format!("/payments?access_token={t}"),
        &bearer(&t),
    );
    assert_eq!(both.reason, Reason::RequestMalformed);
    let twice = run(
        &cfg,
        "GET",
        &format!("/payments?access_token={t}&access_token={t}"),
        &[],
    );
    assert_eq!(twice.reason, Reason::RequestMalformed);
}

#[test]
fn token_size_limit_applies() {
    let big = with(claims("payments:read"), "pad", json!("x".repeat(9000)));
    assert_eq!(
        reason_of("GET", "/payments", &bearer(&rs256(&big))),
        Reason::TokenMalformed
    );
}

#[test]
fn jwk_alg_restricts_the_key() {
    let mut doc = base_config();
    let mut jwk = keys().rsa.public_jwk(Some("rsa1"));
    jwk["alg"] = json!("PS256");
    doc["providers"][0]["jwks"]["inline"]["keys"][0] = jwk;
    let cfg = config_from(&doc);
    let c = claims("payments:read");
    let rs = keys().rsa.sign(Alg::RS256, Some("rsa1"), &c).unwrap();
    let ps = keys().rsa.sign(Alg::PS256, Some("rsa1"), &c).unwrap();
    assert_eq!(
        run(&cfg, "GET", "/payments", &bearer(&rs)).reason,
        Reason::KeyNotFound
    );
    assert_eq!(
        run(&cfg, "GET", "/payments", &bearer(&ps)).reason,
        Reason::Allowed
    );
}

#[test]
fn identity_is_kept_for_verified_tokens_that_fail_the_rule_only() {
    let d = run(
        &config(),
        "GET",
        "/payments",
        &bearer(&rs256(&claims("orders:read"))),
    );
    assert_eq!(d.reason, Reason::InsufficientScope);
    assert!(d.identity.is_some());
    let d = run(
        &config(),
        "GET",
        "/payments",
        &bearer(&tamper_signature(&rs256(&claims("payments:read")))),
    );
    assert!(d.identity.is_none());
}
