//! CSV cells the way Shadowserver writes them: text quoted (`"` doubled), numbers bare, empty
//! cells empty.

use std::fmt;
use std::io::{self, Write};

pub(crate) struct Csv<W: Write> {
    pub w: W,
    first: bool,
}

impl<W: Write> Csv<W> {
    pub(crate) fn new(w: W) -> Self {
        Csv { w, first: true }
    }

    fn sep(&mut self) -> io::Result<()> {
        if self.first {
            self.first = false;
            Ok(())
        } else {
            self.w.write_all(b",")
        }
    }

    pub(crate) fn end(&mut self) -> io::Result<()> {
        self.first = true;
        self.w.write_all(b"\n")
    }

    /// A text cell; empty text gives an empty cell.
    pub(crate) fn s(&mut self, v: &str) -> io::Result<()> {
        self.sep()?;
        if v.is_empty() {
            return Ok(());
        }
        self.w.write_all(b"\"")?;
        if v.contains('"') {
            for (i, part) in v.split('"').enumerate() {
                if i > 0 {
                    self.w.write_all(b"\"\"")?;
                }
                self.w.write_all(part.as_bytes())?;
            }
        } else {
            self.w.write_all(v.as_bytes())?;
        }
        self.w.write_all(b"\"")
    }

    /// A quoted cell from format arguments that never contain `"` (our own composites).
    pub(crate) fn f(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        self.sep()?;
        self.w.write_all(b"\"")?;
        self.w.write_fmt(args)?;
        self.w.write_all(b"\"")
    }

    /// A bare number; 0 gives an empty cell when `zero_empty`.
    pub(crate) fn n(&mut self, v: u64, zero_empty: bool) -> io::Result<()> {
        self.sep()?;
        if zero_empty && v == 0 { Ok(()) } else { write!(self.w, "{v}") }
    }

    pub(crate) fn empty(&mut self) -> io::Result<()> {
        self.sep()
    }
}
