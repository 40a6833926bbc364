//! What one call sends and how its answer is checked: requests prebuilt from the features
//! file, sent with the token, and answers verified against the wire contract.

use std::path::Path;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::proto::decision_service_client::DecisionServiceClient;
use crate::proto::{DecideBatchRequest, DecideRequest, PingRequest, Profile};

pub type Client = DecisionServiceClient<Channel>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rpc {
    Ping,
    Decide,
    DecideBatch,
}

/// The features file: `{"placements": ["hero"], "consents": ["web"], "features": [[...], ...]}`.
/// `features` is one vector or a list of them, laid out by the catalog's schema.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeaturesFile {
    placements: Vec<String>,
    #[serde(default)]
    consents: Vec<String>,
    features: Vectors,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Vectors {
    One(Vec<f32>),
    Many(Vec<Vec<f32>>),
}

impl Default for Vectors {
    fn default() -> Self {
        Self::Many(Vec::new())
    }
}

/// A call that did not succeed: the gRPC status code name (`UNAVAILABLE`), or `BAD_RESPONSE`
/// for an answer that breaks the contract, and a message.
pub struct Failure {
    pub code: String,
    pub message: String,
}

impl Failure {
    fn bad(message: String) -> Self {
        Self { code: "BAD_RESPONSE".into(), message }
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Self { code: code_name(status.code()), message: status.message().to_owned() }
    }
}

/// `DeadlineExceeded` -> `DEADLINE_EXCEEDED`, as gRPC names its codes.
fn code_name(code: Code) -> String {
    let camel = format!("{code:?}");
    let underscore = |i: usize, c: char| (i > 0 && c.is_uppercase()).then_some('_');
    camel.chars().enumerate().flat_map(|(i, c)| underscore(i, c).into_iter().chain([c.to_ascii_uppercase()])).collect()
}

pub struct Workload {
    rpc: Rpc,
    token: Option<AsciiMetadataValue>,
    placements: Vec<String>,
    decide: Vec<DecideRequest>,
    batch: DecideBatchRequest,
}

impl Workload {
    /// The features file may be left out for Ping, which sends nothing.
    pub fn load(path: Option<&Path>, rpc: Rpc, token: Option<&str>) -> Result<Self, String> {
        let file: FeaturesFile = match path {
            Some(path) => {
                let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
                serde_json::from_str(&std::fs::read_to_string(path).map_err(|e| at(&e))?).map_err(|e| at(&e))?
            }
            None if rpc == Rpc::Ping => FeaturesFile::default(),
            None => return Err("--features-file is needed for decide and decide-batch".into()),
        };
        let vectors = match file.features {
            Vectors::One(v) => vec![v],
            Vectors::Many(vs) => vs,
        };
        if rpc != Rpc::Ping {
            if vectors.is_empty() || vectors.iter().any(|v| v.len() != vectors[0].len()) {
                return Err("the features file needs vectors, all of one length".into());
            }
            if file.placements.is_empty() {
                return Err("the features file names no placements".into());
            }
        }
        let decide = vectors
            .iter()
            .map(|v| DecideRequest {
                profile: Some(Profile { features: v.clone(), consents: file.consents.clone(), ..Default::default() }),
                placements: file.placements.clone(),
                ..Default::default()
            })
            .collect();
        // DecideBatch: every vector as one row, all consenting to `consents`, first placement.
        let batch = DecideBatchRequest {
            placement: file.placements.first().cloned().unwrap_or_default(),
            rows: vectors.len() as u32,
            features: vectors.concat(),
            consents: vec![true; vectors.len() * file.consents.len()],
            consent_channels: file.consents,
            ..Default::default()
        };
        let token = match token {
            Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| "the token is not ASCII".to_string())?),
            None => None,
        };
        Ok(Self { rpc, token, placements: file.placements, decide, batch })
    }

    /// Profiles decided per call.
    pub fn rows_per_call(&self) -> u64 {
        match self.rpc {
            Rpc::Ping => 0,
            Rpc::Decide => 1,
            Rpc::DecideBatch => u64::from(self.batch.rows),
        }
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(token) = &self.token {
            request.metadata_mut().insert("authorization", token.clone());
        }
        request
    }

    /// Sends call number `i` (requests are cycled) and checks the answer.
    pub async fn call(&self, client: &mut Client, i: usize) -> Result<(), Failure> {
        match self.rpc {
            Rpc::Ping => {
                client.ping(self.request(PingRequest {})).await?;
            }
            Rpc::Decide => {
                let request = self.decide[i % self.decide.len()].clone();
                let response = client.decide(self.request(request)).await?.into_inner();
                let got: Vec<&str> = response.decisions.iter().map(|d| d.placement.as_str()).collect();
                if got != self.placements {
                    return Err(Failure::bad(format!("decisions for {got:?}, asked for {:?}", self.placements)));
                }
                let mut offers: Vec<&str> =
                    response.decisions.iter().flat_map(|d| &d.offers).map(|o| o.offer_id.as_str()).collect();
                offers.sort_unstable();
                if let Some(twice) = offers.windows(2).find(|w| w[0] == w[1]) {
                    return Err(Failure::bad(format!("offer {} chosen twice on one page", twice[0])));
                }
            }
            Rpc::DecideBatch => {
                let response = client.decide_batch(self.request(self.batch.clone())).await?.into_inner();
                self.check_batch(&response)?;
            }
        }
        Ok(())
    }

    fn check_batch(&self, r: &crate::proto::DecideBatchResponse) -> Result<(), Failure> {
        let rows = self.batch.rows as usize;
        let cells = rows * r.slots as usize;
        let shapes_ok = r.rows == self.batch.rows
            && r.placement == self.batch.placement
            && r.decision_ids.len() == rows
            && r.offers.len() == cells
            && r.scores.len() == cells
            && r.propensities.len() == cells;
        if !shapes_ok {
            return Err(Failure::bad(format!(
                "batch of {rows} rows answered with rows {}, {} ids, {} offers for {} slots",
                r.rows,
                r.decision_ids.len(),
                r.offers.len(),
                r.slots
            )));
        }
        if let Some(bad) = r.offers.iter().find(|&&o| o < -1 || o >= r.offer_ids.len() as i32) {
            return Err(Failure::bad(format!("offer index {bad} out of {} offer ids", r.offer_ids.len())));
        }
        Ok(())
    }
}
