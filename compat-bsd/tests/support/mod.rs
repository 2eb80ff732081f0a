//! A device context for the KPI tests, as the adapter makes one at attach.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use pktkit_bsd::ctx::DevCtx;
use pktkit_native::pool::HugePages;
use pktkit_native::{OwnerId, Pool, PoolConfig};

/// A context over a fresh 256-buffer pool named `name`, with its owner.
pub fn device(name: &str) -> (Pool, OwnerId, Arc<DevCtx>) {
    let pool = Pool::new(&PoolConfig {
        name: name.into(),
        buffers: 256,
        hugepages: HugePages::Never,
    })
    .expect("pool");
    let owner = pool.register_owner(name).expect("owner");
    let ctx = Arc::new(DevCtx::new(pool.clone(), owner, BTreeMap::new()).expect("ctx"));
    ctx.bind_tags();
    (pool, owner, ctx)
}

/// Just the context.
pub fn setup(name: &str) -> Arc<DevCtx> {
    device(name).2
}
