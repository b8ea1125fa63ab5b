use super::*;
use envoy_types::pb::envoy::config::core::v3::{
    Address, HeaderMap, HeaderValue, SocketAddress, address, socket_address,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use proptest::prelude::*;
use prost::Message;
use std::collections::HashMap;

fn peer(port: u32) -> Peer {
    Peer {
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: "10.1.2.3".into(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        }),
        principal: "spiffe://cluster/ns/a/sa/b".into(),
        ..Default::default()
    }
}

/// A request shaped like Envoy's: peers, context extensions and the HTTP request.
fn check_request(http: HttpRequest) -> Vec<u8> {
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(peer(40000)),
            destination: Some(peer(8080)),
            request: Some(Request {
                time: Some(Default::default()),
                http: Some(http),
            }),
            context_extensions: [("route".to_owned(), "r1".to_owned())].into(),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

fn header_value(key: &str, value: &str, raw: &[u8]) -> HeaderValue {
    HeaderValue {
        key: key.into(),
        value: value.into(),
        raw_value: raw.to_vec(),
    }
}

#[test]
fn reads_headers_and_path_of_the_map_form() {
    let headers: HashMap<String, String> = [
        ("authorization", "Bearer abc.def.ghi"),
        (":authority", "api.example"),
        ("cookie", "a=1; session=xyz"),
        ("x-empty", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let bytes = check_request(HttpRequest {
        id: "123".into(),
        method: "GET".into(),
        headers,
        path: "/v1/things?access_token=q".into(),
        host: "api.example".into(),
        size: 12,
        ..Default::default()
    });
    let view = CheckView::decode(&bytes).expect("decodes");
    assert_eq!(view.header("authorization"), Some("Bearer abc.def.ghi"));
    assert_eq!(view.header("cookie"), Some("a=1; session=xyz"));
    assert_eq!(view.header("x-empty"), Some(""));
    assert_eq!(view.header("x-absent"), None);
    assert_eq!(view.path(), "/v1/things?access_token=q");
}

#[test]
fn header_map_form_joins_repeats_and_reads_raw_values() {
    let bytes = check_request(HttpRequest {
        header_map: Some(HeaderMap {
            headers: vec![
                header_value("Authorization", "", b"Bearer raw.form.token"),
                header_value("cookie", "a=1", b""),
                header_value("x-many", "one", b""),
                header_value("cookie", "", b"session=xyz"),
                header_value("x-many", "two", b""),
                header_value("x-latin1", "", b"caf\xe9"),
            ],
        }),
        path: "/p".into(),
        ..Default::default()
    });
    let view = CheckView::decode(&bytes).expect("decodes");
    assert_eq!(view.header("authorization"), Some("Bearer raw.form.token"));
    assert_eq!(view.header("cookie"), Some("a=1; session=xyz"));
    assert_eq!(view.header("x-many"), Some("one,two"));
    // Not UTF-8: converted the way the prost path did, never dropped into another value.
    assert_eq!(view.header("x-latin1"), Some("caf\u{fffd}"));
    assert_eq!(view.path(), "/p");
}

#[test]
fn the_map_form_wins_when_both_came() {
    let bytes = check_request(HttpRequest {
        headers: [("authorization".to_owned(), "Bearer map".to_owned())].into(),
        header_map: Some(HeaderMap {
            headers: vec![header_value("authorization", "Bearer header-map", b"")],
        }),
        ..Default::default()
    });
    let view = CheckView::decode(&bytes).expect("decodes");
    assert_eq!(view.header("authorization"), Some("Bearer map"));
}

#[test]
fn more_headers_than_fit_inline_are_all_kept() {
    let headers: HashMap<String, String> = (0..200)
        .map(|i| (format!("x-h{i}"), format!("v{i}")))
        .collect();
    let bytes = check_request(HttpRequest {
        headers,
        ..Default::default()
    });
    let view = CheckView::decode(&bytes).expect("decodes");
    for i in 0..200 {
        assert_eq!(
            view.header(&format!("x-h{i}")),
            Some(format!("v{i}").as_str())
        );
    }
}

#[test]
fn malformed_input_is_an_error_not_a_guess() {
    let bytes = check_request(HttpRequest {
        headers: [("authorization".to_owned(), "Bearer abc".to_owned())].into(),
        path: "/x".into(),
        ..Default::default()
    });
    // Every strict prefix cuts a length-delimited field short somewhere.
    for cut in 1..bytes.len() {
        assert!(
            CheckView::decode(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes decoded"
        );
    }
    assert_eq!(
        CheckView::decode(&[0x0b]).err(),
        Some(WireError::WireType(3)),
        "groups are refused"
    );
    assert_eq!(
        CheckView::decode(&[0x08; 11]).err(),
        Some(WireError::Truncated)
    );
    // A path that is not UTF-8 is refused, as prost refuses it.
    let bad = [0x0a, 0x07, 0x22, 0x05, 0x12, 0x03, 0x22, 0x01, 0xff];
    assert_eq!(CheckView::decode(&bad).err(), Some(WireError::Utf8));
}

#[test]
fn frames_are_checked() {
    let framed = framed_message(&CheckRequest::default());
    assert_eq!(&framed[..], &[0, 0, 0, 0, 0]);
    assert_eq!(unframe(&framed), Ok(&[][..]));
    assert_eq!(unframe(&[0, 0, 0, 0, 2, 1]), Err(WireError::Frame));
    assert_eq!(unframe(&[1, 0, 0, 0, 1, 1]), Err(WireError::Compressed));
    assert_eq!(unframe(&[0, 0, 0]), Err(WireError::Frame));
}

proptest! {
    /// The decoder reads exactly what prost reads, for any headers and path.
    #[test]
    fn agrees_with_prost(
        headers in proptest::collection::hash_map("[a-z:-]{1,12}", "[ -~]{0,40}", 0..40),
        path in "[ -~]{0,60}",
        probe in "[a-z:-]{1,12}",
    ) {
        let bytes = check_request(HttpRequest {
            headers: headers.clone(),
            path: path.clone(),
            method: "POST".into(),
            ..Default::default()
        });
        let view = CheckView::decode(&bytes).expect("decodes");
        for (name, value) in &headers {
            prop_assert_eq!(view.header(name), Some(value.as_str()));
        }
        prop_assert_eq!(view.header(&probe), headers.get(&probe).map(String::as_str));
        prop_assert_eq!(view.path(), path.as_str());
    }

    /// Arbitrary bytes never panic.
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = CheckView::decode(&bytes);
        let _ = unframe(&bytes);
    }
}
