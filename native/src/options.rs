//! Parsing of driver specifications as given on the command line:
//! `NAME[,key=value...]`, e.g. `tap,ifname=tap7` or `afpacket,ifname=veth1`.

use std::collections::BTreeMap;

/// A parsed `-d` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverSpec {
    /// Driver name (or a path, for loadable drivers).
    pub name: String,
    /// Options in the order-independent form drivers read.
    pub options: BTreeMap<String, String>,
}

/// Why a `-d` argument could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// Nothing before the first comma.
    #[error("empty driver name in '{0}'")]
    EmptyName(String),
    /// An option without `=`, or with an empty key.
    #[error("option '{0}' is not key=value")]
    NotKeyValue(String),
    /// The same key twice.
    #[error("option '{0}' given twice")]
    Duplicate(String),
}

impl DriverSpec {
    /// Parses `NAME[,key=value...]`.
    pub fn parse(s: &str) -> Result<DriverSpec, SpecError> {
        let mut parts = s.split(',');
        let name = parts.next().unwrap_or("").trim();
        if name.is_empty() {
            return Err(SpecError::EmptyName(s.to_owned()));
        }
        let mut options = BTreeMap::new();
        for p in parts {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| SpecError::NotKeyValue(p.to_owned()))?;
            let k = k.trim();
            if k.is_empty() {
                return Err(SpecError::NotKeyValue(p.to_owned()));
            }
            if options.insert(k.to_owned(), v.trim().to_owned()).is_some() {
                return Err(SpecError::Duplicate(k.to_owned()));
            }
        }
        Ok(DriverSpec {
            name: name.to_owned(),
            options,
        })
    }
}

/// Parses a MAC address `xx:xx:xx:xx:xx:xx` (hex, `:` or `-` separated).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut mac {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let s = DriverSpec::parse("tap,ifname=tap7,queues=2").unwrap();
        assert_eq!(s.name, "tap");
        assert_eq!(s.options["ifname"], "tap7");
        assert_eq!(DriverSpec::parse("null").unwrap().options.len(), 0);
        assert_eq!(
            DriverSpec::parse(",x=1"),
            Err(SpecError::EmptyName(",x=1".into()))
        );
        assert_eq!(
            DriverSpec::parse("tap,ifname"),
            Err(SpecError::NotKeyValue("ifname".into()))
        );
        assert_eq!(
            DriverSpec::parse("tap,a=1,a=2"),
            Err(SpecError::Duplicate("a".into()))
        );
        assert_eq!(
            DriverSpec::parse("/x/y.so,pci=0000:00:03.0")
                .unwrap()
                .options["pci"],
            "0000:00:03.0"
        );
    }
}
