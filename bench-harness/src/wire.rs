//! Keeping the client light: request bodies are encoded once, before the run, and answers
//! are decoded into slim messages that skip what the harness never reads (claims, dynamic
//! metadata, allowed-request headers).
//!
//! The load is sent with tonic's own gRPC client ([`tonic::client::Grpc`] over a tonic
//! [`Channel`](tonic::transport::Channel)), the same one the generated
//! `AuthorizationClient`/`VerifierClient` wrap; only the codec differs: [`RawCodec`] writes
//! the pre-encoded bytes of an envoy-types `CheckRequest` (or `verdict.v1` `VerifyRequest`s)
//! and decodes a slim view of the answer.

use crate::scenario::RpcKind;
use crate::tokens::{Kind, Pick, TokenPool};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use prost::Message;
use prost::bytes::{BufMut, BytesMut};
use std::marker::PhantomData;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::Bytes;
use verdict::rpc::proto::{VerifyRequest, VerifyResponse};

/// `envoy.service.auth.v3.Authorization/Check`.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";
/// `verdict.v1.Verifier/VerifyBatch`.
pub const VERIFY_BATCH_PATH: &str = "/verdict.v1.Verifier/VerifyBatch";

/// Writes pre-encoded request bytes; decodes answers as `D`.
#[derive(Debug)]
pub struct RawCodec<D>(PhantomData<fn() -> D>);

impl<D> Default for RawCodec<D> {
    fn default() -> Self {
        RawCodec(PhantomData)
    }
}

impl<D: Message + Default + Send + 'static> Codec for RawCodec<D> {
    type Encode = Bytes;
    type Decode = D;
    type Encoder = RawEncoder;
    type Decoder = SlimDecoder<D>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> SlimDecoder<D> {
        SlimDecoder(PhantomData)
    }
}

/// Copies pre-encoded bytes into the frame.
#[derive(Debug)]
pub struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(2048, 32 * 1024)
    }
}

/// Decodes a prost message.
#[derive(Debug)]
pub struct SlimDecoder<D>(PhantomData<fn() -> D>);

impl<D: Message + Default> Decoder for SlimDecoder<D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        D::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("undecodable answer: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(2048, 32 * 1024)
    }
}

/// A message whose content is skipped.
#[derive(Clone, PartialEq, Message)]
pub struct Skipped {}

/// The parts of a `CheckResponse` the harness reads (same field numbers).
#[derive(Clone, PartialEq, Message)]
pub struct SlimCheckResponse {
    /// `status`.
    #[prost(message, optional, tag = "1")]
    pub status: Option<envoy_types::pb::google::rpc::Status>,
    /// `denied_response`.
    #[prost(message, optional, tag = "2")]
    pub denied_response: Option<DeniedHttpResponse>,
    /// `ok_response` (its headers are not read).
    #[prost(message, optional, tag = "3")]
    pub ok_response: Option<Skipped>,
}

impl SlimCheckResponse {
    /// The equivalent `CheckResponse` (without what was skipped).
    pub fn into_check_response(self) -> CheckResponse {
        let http_response = match (self.denied_response, self.ok_response) {
            (Some(denied), _) => Some(HttpResponse::DeniedResponse(denied)),
            (None, Some(_)) => Some(HttpResponse::OkResponse(OkHttpResponse::default())),
            (None, None) => None,
        };
        CheckResponse {
            status: self.status,
            dynamic_metadata: None,
            http_response,
        }
    }
}

/// The parts of a `VerifyResponse` the harness reads.
#[derive(Clone, PartialEq, Message)]
pub struct SlimVerifyResponse {
    /// `verdict`.
    #[prost(int32, tag = "1")]
    pub verdict: i32,
    /// `reason`.
    #[prost(string, tag = "2")]
    pub reason: String,
}

impl SlimVerifyResponse {
    /// The equivalent `VerifyResponse` (without claims).
    pub fn into_verify_response(self) -> VerifyResponse {
        VerifyResponse {
            verdict: self.verdict,
            reason: self.reason,
            ..Default::default()
        }
    }
}

/// The parts of a `VerifyBatchResponse` the harness reads.
#[derive(Clone, PartialEq, Message)]
pub struct SlimBatchResponse {
    /// `responses`.
    #[prost(message, repeated, tag = "1")]
    pub responses: Vec<SlimVerifyResponse>,
}

/// The pre-encoded request bodies of a pool.
#[derive(Debug, Default)]
pub struct Wire {
    /// Check: the encoded `CheckRequest` of each token, per category.
    check: Vec<Vec<Bytes>>,
    /// Check without a credential.
    check_none: Bytes,
    /// VerifyBatch: each token's `requests` entry (field tag, length, `VerifyRequest`).
    verify: Vec<Vec<Bytes>>,
    /// VerifyBatch entry of an empty token.
    verify_none: Bytes,
}

/// A `VerifyBatchRequest.requests` entry: tag of field 1 (length-delimited), the length, the
/// encoded `VerifyRequest`.
pub fn batch_entry(token: &str) -> Bytes {
    let inner = VerifyRequest {
        token: token.to_owned(),
        provider: String::new(),
    }
    .encode_to_vec();
    let mut out = BytesMut::with_capacity(inner.len() + 6);
    out.put_u8(0x0a);
    prost::encoding::encode_varint(inner.len() as u64, &mut out);
    out.put_slice(&inner);
    out.freeze()
}

impl Wire {
    /// Encodes every token of `pool` for `rpc`.
    pub fn build(pool: &TokenPool, rpc: RpcKind) -> Wire {
        let mut wire = Wire::default();
        match rpc {
            RpcKind::Check => {
                wire.check_none =
                    Bytes::from(crate::load::envoy_check_request(None, 0).encode_to_vec());
                wire.check = pool
                    .categories()
                    .iter()
                    .enumerate()
                    .map(|(c, category)| {
                        category
                            .tokens
                            .iter()
                            .enumerate()
                            .map(|(i, t)| {
                                let id = ((c as u64) << 40) | i as u64;
                                Bytes::from(
                                    crate::load::envoy_check_request(Some(&t.text), id)
                                        .encode_to_vec(),
                                )
                            })
                            .collect()
                    })
                    .collect();
            }
            RpcKind::VerifyBatch => {
                wire.verify_none = batch_entry("");
                wire.verify = pool
                    .categories()
                    .iter()
                    .map(|category| {
                        category
                            .tokens
                            .iter()
                            .map(|t| batch_entry(&t.text))
                            .collect()
                    })
                    .collect();
            }
        }
        wire
    }

    /// The encoded `CheckRequest` for a pick.
    pub fn check(&self, pick: &Pick<'_>) -> Bytes {
        if pick.kind == Kind::NoCredential {
            return self.check_none.clone();
        }
        self.check
            .get(pick.category)
            .and_then(|c| c.get(pick.index))
            .cloned()
            .unwrap_or_else(|| self.check_none.clone())
    }

    /// The `VerifyBatchRequest` entry for a pick.
    pub fn batch_entry(&self, pick: &Pick<'_>) -> &[u8] {
        if pick.kind == Kind::NoCredential {
            return &self.verify_none;
        }
        self.verify
            .get(pick.category)
            .and_then(|c| c.get(pick.index))
            .map_or(&self.verify_none[..], |b| &b[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
    use verdict::rpc::proto::{Verdict, VerifyBatchRequest, VerifyBatchResponse};

    #[test]
    fn batch_entries_concatenate_into_a_batch_request() {
        let mut body = Vec::new();
        for token in ["a.b.c", "", "x".repeat(300).as_str()] {
            body.extend_from_slice(&batch_entry(token));
        }
        let decoded = VerifyBatchRequest::decode(body.as_slice()).expect("decodes");
        let tokens: Vec<&str> = decoded.requests.iter().map(|r| r.token.as_str()).collect();
        assert_eq!(tokens, ["a.b.c", "", "x".repeat(300).as_str()]);
    }

    #[test]
    fn slim_answers_keep_what_is_read() {
        let full = VerifyBatchResponse {
            responses: vec![
                VerifyResponse {
                    verdict: Verdict::Valid as i32,
                    claims_json: "{\"sub\":\"x\"}".into(),
                    alg: "RS256".into(),
                    ..Default::default()
                },
                VerifyResponse {
                    verdict: Verdict::Invalid as i32,
                    reason: "expired".into(),
                    ..Default::default()
                },
            ],
        };
        let slim = SlimBatchResponse::decode(full.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(slim.responses.len(), 2);
        assert_eq!(
            slim.responses.get(1).map(|r| r.reason.as_str()),
            Some("expired")
        );

        let request = crate::load::envoy_check_request(Some("t.o.k"), 7);
        let decoded = CheckRequest::decode(request.encode_to_vec().as_slice()).expect("decodes");
        let headers = &decoded
            .attributes
            .and_then(|a| a.request)
            .and_then(|r| r.http)
            .expect("http")
            .headers;
        assert_eq!(
            headers.get("authorization").map(String::as_str),
            Some("Bearer t.o.k")
        );
    }
}
