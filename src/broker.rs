//! The broker: the shared state every handler sees (controller, logs,
//! groups, limits) and its start/stop life cycle.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::controller::Controller;
use crate::server::Limits;

pub struct Broker {
    limits: Limits,
    request_memory: Arc<Semaphore>,
    pub controller: Controller,
}

impl Broker {
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn request_memory(&self) -> &Arc<Semaphore> {
        &self.request_memory
    }
}
