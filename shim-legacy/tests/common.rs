//! Helpers shared by the shim's integration tests.

#![allow(dead_code)]

use std::collections::BTreeMap;

use pktkit_native::pool::HugePages;
use pktkit_native::{AttachArgs, Driver, DriverError, OwnerId, Pool, PoolConfig};

/// A small pool on 4 KiB pages.
pub fn pool(name: &str, buffers: usize) -> Pool {
    Pool::new(&PoolConfig {
        name: name.into(),
        buffers,
        hugepages: HugePages::Never,
    })
    .expect("pool")
}

/// Attaches `legacy:<so>` with `opts` the way the stack does: resolve,
/// check options, create. Returns the driver and its owner.
pub fn attach(
    pool: &Pool,
    so: &str,
    opts: &[(&str, &str)],
) -> Result<(Box<dyn Driver>, OwnerId), DriverError> {
    let f = pktkit_shim::factory(&format!("legacy:{so}"))?;
    let options: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    f.check_options(&options)?;
    let owner = pool.register_owner("en0").expect("owner");
    let mut devs = (f.create)(&AttachArgs {
        options,
        pool: pool.clone(),
        owners: vec![owner],
        ifnames: vec!["en0".into()],
        pci: None,
    })?;
    assert_eq!(devs.len(), 1);
    Ok((devs.remove(0), owner))
}

/// The value of a named extra counter.
pub fn extra(d: &dyn Driver, key: &str) -> u64 {
    d.counters()
        .extra
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no counter {key}"))
}
