//! Reading Cairo return values and event payloads felt by felt.

use starknet_rust::core::types::Felt;

use crate::ChainError;

/// A cursor over felts returned by a view or carried by an event.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    felts: &'a [Felt],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(felts: &'a [Felt], what: &'static str) -> Self {
        Self { felts, what }
    }

    fn err(&self, reason: String) -> ChainError {
        ChainError::Decode { what: self.what, reason }
    }

    pub(crate) fn felt(&mut self) -> Result<Felt, ChainError> {
        let (first, rest) = self.felts.split_first().ok_or_else(|| self.err("too few felts".into()))?;
        self.felts = rest;
        Ok(*first)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, ChainError> {
        let f = self.felt()?;
        u64::try_from(f).map_err(|_| self.err(format!("{f:#x} exceeds u64")))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ChainError> {
        let f = self.felt()?;
        u32::try_from(f).map_err(|_| self.err(format!("{f:#x} exceeds u32")))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, ChainError> {
        let f = self.felt()?;
        u16::try_from(f).map_err(|_| self.err(format!("{f:#x} exceeds u16")))
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ChainError> {
        let f = self.felt()?;
        u8::try_from(f).map_err(|_| self.err(format!("{f:#x} exceeds u8")))
    }

    pub(crate) fn bool(&mut self) -> Result<bool, ChainError> {
        match self.felt()? {
            f if f == Felt::ZERO => Ok(false),
            f if f == Felt::ONE => Ok(true),
            f => Err(self.err(format!("{f:#x} is not a bool"))),
        }
    }

    /// A `u256` that must fit in `u128`.
    pub(crate) fn u256(&mut self) -> Result<u128, ChainError> {
        let low = self.felt()?;
        let high = self.felt()?;
        crate::u256::from_felts(&[low, high])
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[Felt; N], ChainError> {
        let mut out = [Felt::ZERO; N];
        for slot in &mut out {
            *slot = self.felt()?;
        }
        Ok(out)
    }
}

/// The event's selector key, if it is `name`.
pub(crate) fn is_event(event: &starknet_rust::core::types::Event, name: &str) -> bool {
    crate::client::selector(name).is_ok_and(|s| event.keys.first() == Some(&s))
}
