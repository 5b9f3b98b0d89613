//! A revision: the cluster-wide write counter (`main`) and the position of a
//! change inside that write (`sub`). Stored big-endian so byte order is
//! revision order.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

pub const REVISION_BYTES: usize = 16;

impl Revision {
    pub const fn new(main: i64, sub: i64) -> Self {
        Revision { main, sub }
    }

    pub fn to_bytes(self) -> [u8; REVISION_BYTES] {
        let mut b = [0u8; REVISION_BYTES];
        b[..8].copy_from_slice(&(self.main as u64).to_be_bytes());
        b[8..].copy_from_slice(&(self.sub as u64).to_be_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != REVISION_BYTES {
            return None;
        }
        let main = u64::from_be_bytes(b[..8].try_into().ok()?) as i64;
        let sub = u64::from_be_bytes(b[8..].try_into().ok()?) as i64;
        Some(Revision { main, sub })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_is_revision_order() {
        let revs = [Revision::new(1, 0), Revision::new(1, 5), Revision::new(2, 0), Revision::new(256, 1)];
        for w in revs.windows(2) {
            assert!(w[0].to_bytes() < w[1].to_bytes());
            assert_eq!(Revision::from_bytes(&w[1].to_bytes()), Some(w[1]));
        }
        assert_eq!(Revision::from_bytes(&[1, 2, 3]), None);
    }
}
