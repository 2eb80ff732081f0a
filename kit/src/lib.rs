//! The pktkit stack.
//!
//! - [`runtime`]: worker threads, epoll/eventfd sleeping, timers, deferred
//!   work, and enforcement of each driver's concurrency class;
//! - [`iface`]: interfaces (named by driver type and unit) with flags, MTU,
//!   MAC, capabilities, link state and its subscribers, counters, multicast
//!   list and addresses;
//! - [`stack`]: the pool, the runtime and the attached interfaces together;
//! - [`registry`]: every driver the stack can attach;
//! - [`proto`]: the protocol layer (smoltcp) and the built-in services;
//! - [`bench`]: forwarding and pool benchmarks;
//! - [`ctl`]: the control socket of a running stack and its client commands;
//! - [`bpf`]: packet taps with filter expressions, and pcap files;
//! - [`filter`]: the capture filter language and the frame header parser;
//! - [`pfil`]: packet filter hooks on the interfaces' input and output;
//! - [`fw`]: the built-in stateless filter (rules by number) on those hooks;
//! - [`alloc_count`]: a counting global allocator for the no-heap-on-the-packet-path check;
//! - [`probe`]: a test driver that detects concurrent entry.

pub mod alloc_count;
pub mod bench;
pub mod bpf;
pub mod cli;
pub mod ctl;
pub mod filter;
pub mod fw;
pub mod iface;
pub mod new;
pub mod pci;
pub mod pfil;
pub mod probe;
pub mod proto;
pub mod registry;
pub mod runtime;
pub mod stack;
