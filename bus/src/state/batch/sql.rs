//! Building multi-row statements: placeholders for either backend, and chunks padded to a few sizes.
//!
//! Why apart: the core's group commit and a plugin's [`super::super::GroupWriter`] both write many rows per
//! statement; one way to lay out `($1, $2), ($3, $4)` keeps their SQL alike and the statement cache small.
//! Public as `lienthong_bus::state::sql` for plugins' writers.

/// Most rows in one statement (keeps the bind-parameter count far below every backend's limit).
pub(crate) const ROWS_PER_STATEMENT: usize = 100;

/// Statement sizes used: a chunk of rows is padded up to the next of these by repeating its last row (a
/// no-op for `IN (…)` and `ON CONFLICT DO NOTHING`), so only a handful of distinct SQL texts exist and
/// each stays prepared in the connection's statement cache instead of being parsed again per batch.
const SIZES: [usize; 5] = [1, 4, 16, 48, ROWS_PER_STATEMENT];

/// `chunk` padded to the next of [`SIZES`] by repeating its last element.
pub(super) fn padded<T: Copy>(chunk: &[T]) -> Vec<T> {
    let want = SIZES
        .iter()
        .copied()
        .find(|&n| n >= chunk.len())
        .unwrap_or(chunk.len());
    let mut v = chunk.to_vec();
    if let Some(&last) = chunk.last() {
        v.resize(want, last);
    }
    v
}

/// How bind parameters are written. PostgreSQL needs `$1, $2, …`; SQLite also takes plain `?` (bound in
/// order of appearance), which it binds without looking each name up in a list — with a few hundred
/// parameters per statement those lookups were a visible share of the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marks {
    Numbered,
    Anonymous,
}

impl Marks {
    /// The placeholder of parameter `n` (1-based).
    pub fn at(self, n: usize) -> String {
        let mut s = String::new();
        self.push(&mut s, n);
        s
    }

    /// Appends the placeholder of parameter `n` (1-based) to `s`: statements of a few hundred parameters are
    /// built per batch, and a string for each placeholder was a measurable share of the allocations.
    fn push(self, s: &mut String, n: usize) {
        use std::fmt::Write as _;
        match self {
            Marks::Numbered => {
                let _ = write!(s, "${n}");
            }
            Marks::Anonymous => s.push('?'),
        }
    }
}

/// `($1, $2, $3), ($4, $5, $6), …` for `rows` rows of `cols` columns.
pub fn values(marks: Marks, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            marks.push(&mut s, r * cols + c + 1);
        }
        s.push(')');
    }
    s
}

/// `$from, $from+1, …` (`n` placeholders).
pub fn list(marks: Marks, from: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 5);
    for i in from..from + n {
        if i > from {
            s.push_str(", ");
        }
        marks.push(&mut s, i);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(values(Marks::Numbered, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(list(Marks::Numbered, 2, 3), "$2, $3, $4");
        assert_eq!(values(Marks::Anonymous, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(list(Marks::Anonymous, 2, 2), "?, ?");
    }

    #[test]
    fn chunks_are_padded_to_few_sizes_with_the_last_row() {
        assert_eq!(padded(&[7]), vec![7]);
        assert_eq!(padded(&[1, 2]), vec![1, 2, 2, 2]);
        assert_eq!(padded(&[0u8; 17]).len(), 48);
        assert_eq!(padded::<u8>(&[]), Vec::<u8>::new());
    }
}
