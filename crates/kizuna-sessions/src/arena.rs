//! Compact string storage: all strings in one byte vector, addressed by `u32` ids.

use hashbrown::HashTable;

/// Strings appended to one buffer, each behind its length (ASCII base-64 digits, so the
/// buffer stays a `String`); a string's id is the offset of its length. One cache line holds
/// both, so reading a string costs one memory access, and there is no offsets vector.
#[derive(Default)]
pub(crate) struct Arena {
    bytes: String,
}

/// Length digits: 6 bits each, `0x40` marks "more digits follow"; every byte is ASCII.
fn push_len(out: &mut String, mut len: usize) {
    loop {
        let digit = (len & 0x3f) as u8;
        len >>= 6;
        if len == 0 {
            out.push(char::from(digit));
            return;
        }
        out.push(char::from(digit | 0x40));
    }
}

impl Arena {
    /// Appends `s`; `None` when the arena is full (4 GiB).
    pub(crate) fn push(&mut self, s: &str) -> Option<u32> {
        let id = u32::try_from(self.bytes.len()).ok().filter(|&id| id != u32::MAX)?;
        u32::try_from(self.bytes.len() + s.len() + 6).ok()?;
        push_len(&mut self.bytes, s.len());
        self.bytes.push_str(s);
        Some(id)
    }

    pub(crate) fn get_bytes(&self, id: u32) -> &[u8] {
        self.get(id).as_bytes()
    }

    #[inline]
    pub(crate) fn get(&self, id: u32) -> &str {
        let b = self.bytes.as_bytes();
        let mut i = id as usize;
        let (mut len, mut shift) = (0usize, 0u32);
        while let Some(&d) = b.get(i) {
            len |= usize::from(d & 0x3f) << shift;
            i += 1;
            if d & 0x40 == 0 {
                break;
            }
            shift += 6;
            if shift > 36 {
                return "";
            }
        }
        self.bytes.get(i..i + len).unwrap_or("")
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

/// An [`Arena`] whose strings are unique: `intern` returns the existing id for a known string.
#[derive(Default)]
pub(crate) struct Interner {
    arena: Arena,
    table: HashTable<u32>,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> Option<u32> {
        let h = hash_bytes(s.as_bytes(), 0);
        let arena = &self.arena;
        if let Some(&id) = self.table.find(h, |&id| arena.get_bytes(id) == s.as_bytes()) {
            return Some(id);
        }
        let id = self.arena.push(s)?;
        let arena = &self.arena;
        self.table.insert_unique(h, id, |&id| hash_bytes(arena.get_bytes(id), 0));
        Some(id)
    }

    pub(crate) fn lookup(&self, s: &str) -> Option<u32> {
        let h = hash_bytes(s.as_bytes(), 0);
        self.table.find(h, |&id| self.arena.get_bytes(id) == s.as_bytes()).copied()
    }

    pub(crate) fn get(&self, id: u32) -> &str {
        self.arena.get(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Every id is below this (ids are byte offsets into the arena).
    pub(crate) fn id_bound(&self) -> usize {
        self.arena.bytes.len()
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.arena.memory_bytes() + self.table.capacity() * (4 + 1)
    }
}

/// A fast non-cryptographic hash (inputs are the ISP's own logs, not attacker-chosen keys in
/// bulk; the table degrades gracefully anyway).
pub(crate) fn hash_bytes(b: &[u8], seed: u64) -> u64 {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15 ^ (b.len() as u64);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x9fb2_1c65_1e98_df25).rotate_left(29);
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
        let mut w = [0u8; 8];
        w[..rem.len()].copy_from_slice(rem);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x9fb2_1c65_1e98_df25).rotate_left(29);
    }
    mix(h)
}

/// murmur3's 64-bit finaliser.
pub(crate) fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning() {
        let mut i = Interner::default();
        let a = i.intern("alice").unwrap();
        let b = i.intern("bob").unwrap();
        assert_ne!(a, b);
        assert_eq!(i.intern("alice"), Some(a));
        assert_eq!(i.get(b), "bob");
        assert_eq!(i.lookup("carol"), None);
        assert_eq!(i.len(), 2);
        for n in 0..10_000 {
            i.intern(&format!("user{n}")).unwrap();
        }
        assert_eq!(i.lookup("user9999").map(|id| i.get(id)), Some("user9999"));
        let long = "x".repeat(70_000);
        let mut a = Arena::default();
        let ids: Vec<u32> =
            ["", "a", &long, "日本語", &"y".repeat(63), &"z".repeat(64)].iter().map(|s| a.push(s).unwrap()).collect();
        assert_eq!(a.get(ids[0]), "");
        assert_eq!(a.get(ids[1]), "a");
        assert_eq!(a.get(ids[2]), long);
        assert_eq!(a.get(ids[3]), "日本語");
        assert_eq!(a.get(ids[4]).len(), 63);
        assert_eq!(a.get(ids[5]).len(), 64);
    }
}
