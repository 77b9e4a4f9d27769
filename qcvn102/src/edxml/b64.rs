//! Incremental base64 checking and decoding with a fixed-size scratch buffer.
//!
//! An attachment's text arrives in pieces (text events, CDATA, character references). Whitespace is skipped,
//! every other character is checked against the standard alphabet as it is seen (so an error has an exact
//! position), and the significant characters are gathered into a 4 KiB buffer that is decoded whenever it
//! fills. Memory stays at about 7 KiB whatever the attachment size; the decoded bytes go to an optional writer
//! and are otherwise dropped.
//!
//! Leniency: missing final padding and non-zero trailing bits are accepted (every decoder agrees on the
//! bytes); characters outside the alphabet, data after `=`, and a length that cannot be base64 are not.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use std::io::{self, Write};

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Significant characters decoded at a time; a multiple of 4 so only the last chunk can be partial.
const CHUNK: usize = 4096;

/// Why base64 text was refused.
#[derive(Debug)]
pub(crate) enum Problem {
    /// A character outside the alphabet, at byte `at` of the piece being fed.
    InvalidChar { ch: char, at: usize },
    /// Data after `=` padding, at byte `at` of the piece being fed.
    AfterPadding { ch: char, at: usize },
    /// The whole text cannot be base64 (length or padding), found at the end.
    BadEnd(String),
    /// The writer receiving decoded bytes failed.
    Io(io::Error),
}

impl Problem {
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::InvalidChar { ch, .. } => {
                format!("character {ch:?} is not in the base64 alphabet")
            }
            Self::AfterPadding { ch, .. } => format!("character {ch:?} after the `=` padding"),
            Self::BadEnd(why) => why.clone(),
            Self::Io(e) => e.to_string(),
        }
    }
}

pub(crate) struct Base64Stream {
    pending: [u8; CHUNK],
    len: usize,
    out: [u8; CHUNK / 4 * 3],
    encoded_len: usize,
    decoded_len: usize,
    padding: bool,
}

impl Base64Stream {
    pub(crate) fn new() -> Box<Self> {
        Box::new(Self {
            pending: [0; CHUNK],
            len: 0,
            out: [0; CHUNK / 4 * 3],
            encoded_len: 0,
            decoded_len: 0,
            padding: false,
        })
    }

    /// Feeds one piece of the text. Decoded bytes go to `out` when given.
    pub(crate) fn feed<'w>(
        &mut self,
        text: &str,
        mut out: Option<&mut (dyn Write + 'w)>,
    ) -> Result<(), Problem> {
        let bytes = text.as_bytes();
        for (at, &b) in bytes.iter().enumerate() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => continue,
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if !self.padding => {}
                b'=' => self.padding = true,
                _ => {
                    let ch = text[at..]
                        .chars()
                        .next()
                        .unwrap_or(char::REPLACEMENT_CHARACTER);
                    return Err(
                        if self.padding && (ch.is_ascii_alphanumeric() || ch == '+' || ch == '/') {
                            Problem::AfterPadding { ch, at }
                        } else {
                            Problem::InvalidChar { ch, at }
                        },
                    );
                }
            }
            self.pending[self.len] = b;
            self.len += 1;
            self.encoded_len += 1;
            if self.len == CHUNK {
                self.decode_pending(out.as_deref_mut())?;
            }
        }
        Ok(())
    }

    /// Ends the text; returns (significant characters, decoded bytes).
    pub(crate) fn finish<'w>(
        mut self: Box<Self>,
        out: Option<&mut (dyn Write + 'w)>,
    ) -> Result<(usize, usize), Problem> {
        if self.len > 0 {
            self.decode_pending(out)?;
        }
        Ok((self.encoded_len, self.decoded_len))
    }

    fn decode_pending<'w>(&mut self, out: Option<&mut (dyn Write + 'w)>) -> Result<(), Problem> {
        let n = ENGINE.decode_slice(&self.pending[..self.len], &mut self.out).map_err(|e| {
            Problem::BadEnd(match e {
                base64::DecodeSliceError::DecodeError(base64::DecodeError::InvalidLength(_)) => {
                    "the number of base64 characters is not a valid length (one too many or too few)".to_owned()
                }
                base64::DecodeSliceError::DecodeError(base64::DecodeError::InvalidPadding) => {
                    "invalid `=` padding at the end".to_owned()
                }
                other => format!("invalid ending: {other}"),
            })
        })?;
        self.len = 0;
        self.decoded_len += n;
        if let Some(w) = out {
            w.write_all(&self.out[..n]).map_err(Problem::Io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn run(pieces: &[&str]) -> Result<(usize, Vec<u8>), Problem> {
        let mut s = Base64Stream::new();
        let mut out = Vec::new();
        for p in pieces {
            s.feed(p, Some(&mut out))?;
        }
        let (enc, dec) = s.finish(Some(&mut out))?;
        assert_eq!(dec, out.len());
        Ok((enc, out))
    }

    #[test]
    fn decodes_across_pieces_and_whitespace_and_chunks() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let text = STANDARD.encode(&data);
        // Split at awkward places and wrap in MIME-style lines.
        let wrapped: String = text
            .as_bytes()
            .chunks(76)
            .map(|l| format!("{}\r\n", std::str::from_utf8(l).unwrap()))
            .collect();
        let (a, b) = wrapped.split_at(4097);
        let (enc, out) = run(&[a, "  ", b]).unwrap();
        assert_eq!(out, data);
        assert_eq!(enc, text.len());
    }

    #[test]
    fn lenient_about_missing_padding_only() {
        assert_eq!(run(&["QUI"]).unwrap().1, b"AB");
        assert_eq!(run(&["QUI="]).unwrap().1, b"AB");
        assert_eq!(run(&[""]).unwrap(), (0, vec![]));
        assert!(matches!(run(&["QUJDR"]), Err(Problem::BadEnd(_))));
        assert!(matches!(run(&["QQ==="]), Err(Problem::BadEnd(_))));
        assert!(matches!(
            run(&["QQ==QQ=="]),
            Err(Problem::AfterPadding { at: 4, .. })
        ));
        assert!(matches!(
            run(&["QU*I"]),
            Err(Problem::InvalidChar { ch: '*', at: 2 })
        ));
        assert!(matches!(
            run(&["QUé"]),
            Err(Problem::InvalidChar { ch: 'é', at: 2 })
        ));
        assert!(matches!(
            run(&["QU-_"]),
            Err(Problem::InvalidChar { ch: '-', .. })
        ));
    }
}
