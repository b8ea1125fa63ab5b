//! `verdict.v1.Verifier`: Verify, VerifyBatch (signatures checked as one batch) and VerifyJws.

use super::ServiceState;
use super::proto::verifier_server::Verifier;
use super::proto::{
    Verdict, VerifyBatchRequest, VerifyBatchResponse, VerifyJwsRequest, VerifyJwsResponse,
    VerifyRequest, VerifyResponse,
};
use crate::jose::{Algorithm, Limits, Reject, parse_jwk};
use crate::keys::KeySet;
use crate::keys::live::{KidMiss, LiveSource};
use crate::policy::provider::token_kid;
use crate::policy::{
    Failed, Judged, Providers, Selector, judge_batch, judge_begin, revocation_keys, verify_jws,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Largest batch accepted in one VerifyBatch call.
pub const MAX_BATCH: usize = 1024;

/// The `verdict.v1` service.
#[derive(Debug, Clone)]
pub struct VerifierService {
    state: ServiceState,
}

impl VerifierService {
    /// A service reading the shared state.
    pub fn new(state: ServiceState) -> Self {
        VerifierService { state }
    }

    fn judge_all(&self, requests: &[VerifyRequest]) -> Result<Vec<VerifyResponse>, Status> {
        let providers = self.state.providers.load();
        check_provider_names(&providers, requests)?;
        let tokens: Vec<(&str, Selector<'_>)> = requests
            .iter()
            .map(|r| (r.token.as_str(), selector(r)))
            .collect();
        let responses = judge_batch(
            &tokens,
            &providers,
            &*self.state.backend,
            (self.state.clock)(),
        )
        .into_iter()
        .map(|judged| to_response(self.unless_revoked(judged)))
        .collect();
        Ok(responses)
    }

    /// One token; its signature is checked by [`ServiceState::check_signature`], so Ed25519
    /// signatures of `Verify` calls ready on this core share a batch. An unknown `kid` waits
    /// (bounded) for its provider's refetch, as in ext_authz.
    async fn judge_one(&self, request: &VerifyRequest) -> Result<VerifyResponse, Status> {
        let providers = self.state.providers.load_full();
        check_provider_names(&providers, std::slice::from_ref(request))?;
        let judged = self.judge_on(request, &providers).await;
        let Some((live, generation)) = unknown_key_source(&judged) else {
            return Ok(to_response(self.unless_revoked(judged)));
        };
        let kid = token_kid(&request.token).unwrap_or_default();
        if live.on_unknown_kid(&kid, generation).await != KidMiss::Refetched {
            return Ok(to_response(self.unless_revoked(judged)));
        }
        let fresh = self.state.providers.load_full();
        let judged = self.judge_on(request, &fresh).await;
        if let Some((live, generation)) = unknown_key_source(&judged) {
            live.remember_absent(&kid, generation);
        }
        Ok(to_response(self.unless_revoked(judged)))
    }

    /// A valid token a live revocation matches becomes `revoked`, as in ext_authz.
    fn unless_revoked<'p>(
        &self,
        judged: Result<Judged<'p>, Failed<'p>>,
    ) -> Result<Judged<'p>, Failed<'p>> {
        let judged = judged?;
        let revocations = self.state.revocations.load();
        if revocations.is_empty() {
            return Ok(judged);
        }
        let keys = revocation_keys(
            &judged.provider.name,
            judged.kid.as_deref(),
            judged.claims.members(),
        );
        if revocations.revokes(&keys) {
            return Err(Failed {
                reason: Reject::Revoked,
                provider: Some(judged.provider),
                alg: Some(judged.alg),
            });
        }
        Ok(judged)
    }

    async fn judge_on<'p>(
        &self,
        request: &VerifyRequest,
        providers: &'p Providers,
    ) -> Result<Judged<'p>, Failed<'p>> {
        match judge_begin(&request.token, selector(request), providers) {
            Ok(pending) => {
                let signature = self.state.check_signature(pending.job()).await;
                pending.finish(signature, (self.state.clock)())
            }
            Err(failed) => Err(failed),
        }
    }
}

/// For a token refused with `unknown_key` by a provider with a live key source: that source
/// and the key-set generation that lacked the `kid`.
fn unknown_key_source(judged: &Result<Judged<'_>, Failed<'_>>) -> Option<(Arc<LiveSource>, u64)> {
    let Err(failed) = judged else {
        return None;
    };
    if failed.reason != Reject::UnknownKey {
        return None;
    }
    let provider = failed.provider?;
    Some((provider.live.clone()?, provider.keys_generation))
}

/// A request names an unknown provider: the caller's mistake, so an error, not a verdict.
fn check_provider_names(providers: &Providers, requests: &[VerifyRequest]) -> Result<(), Status> {
    match requests
        .iter()
        .find(|r| !r.provider.is_empty() && !providers.list().iter().any(|p| p.name == r.provider))
    {
        Some(unknown) => Err(Status::invalid_argument(format!(
            "unknown provider {:?}",
            unknown.provider
        ))),
        None => Ok(()),
    }
}

/// By name when the request names a provider, else by the token's `iss`.
fn selector(request: &VerifyRequest) -> Selector<'_> {
    if request.provider.is_empty() {
        Selector::Issuer(None)
    } else {
        Selector::Name(&request.provider)
    }
}

fn to_response(result: Result<Judged<'_>, Failed<'_>>) -> VerifyResponse {
    match result {
        Ok(judged) => VerifyResponse {
            verdict: Verdict::Valid as i32,
            reason: String::new(),
            provider: judged.provider.name.clone(),
            alg: judged.alg.name().into(),
            // The exact JSON that was signed and validated; no re-serialisation.
            claims_json: judged.claims.json().to_owned(),
        },
        Err(failed) => VerifyResponse {
            verdict: Verdict::Invalid as i32,
            reason: failed.reason.code().into(),
            provider: failed.provider.map(|p| p.name.clone()).unwrap_or_default(),
            alg: failed.alg.map(|a| a.name().to_owned()).unwrap_or_default(),
            claims_json: String::new(),
        },
    }
}

fn invalid_jws(reason: Reject) -> VerifyJwsResponse {
    VerifyJwsResponse {
        verdict: Verdict::Invalid as i32,
        reason: reason.code().into(),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl Verifier for VerifierService {
    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        self.judge_one(request.get_ref()).await.map(Response::new)
    }

    async fn verify_batch(
        &self,
        request: Request<VerifyBatchRequest>,
    ) -> Result<Response<VerifyBatchResponse>, Status> {
        let requests = &request.get_ref().requests;
        if requests.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "a batch holds at most {MAX_BATCH} tokens, got {}",
                requests.len()
            )));
        }
        Ok(Response::new(VerifyBatchResponse {
            responses: self.judge_all(requests)?,
        }))
    }

    async fn verify_jws(
        &self,
        request: Request<VerifyJwsRequest>,
    ) -> Result<Response<VerifyJwsResponse>, Status> {
        let request = request.get_ref();
        let algorithms: Vec<Algorithm> = if request.algorithms.is_empty() {
            Algorithm::ALL
                .into_iter()
                .filter(|a| !a.is_symmetric())
                .collect()
        } else {
            request
                .algorithms
                .iter()
                .map(|name| name.parse::<Algorithm>())
                .collect::<Result<_, _>>()
                .map_err(|e| Status::invalid_argument(e.to_string()))?
        };
        let jwk = parse_jwk(request.jwk.as_bytes())
            .map_err(|e| Status::invalid_argument(format!("jwk: {e}")))?;
        let keys = match KeySet::from_jwk(&jwk, &algorithms, &*self.state.backend) {
            Ok(keys) => keys,
            Err(_) => return Ok(Response::new(invalid_jws(Reject::AlgorithmNotAllowed))),
        };
        let answer = match verify_jws(
            request.jws.as_bytes(),
            &algorithms,
            &Limits::default(),
            &keys,
            &*self.state.backend,
        ) {
            Ok((header, payload)) => VerifyJwsResponse {
                verdict: Verdict::Valid as i32,
                reason: String::new(),
                alg: header.alg.name().into(),
                payload,
            },
            Err(reason) => invalid_jws(reason),
        };
        Ok(Response::new(answer))
    }
}
