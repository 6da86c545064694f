//! Python-compatibility helpers, written once: the bits of CPython's semantics that the
//! WebShop emulation (store pages, reward, observation text, data import) must reproduce
//! byte for byte.
//!
//! * [`text`]: `str.isspace`, `str.strip`, `str.isprintable` and `repr(str)`;
//! * [`url`]: `urllib.parse.unquote` (lenient) and a strict decoder for path segments;
//! * [`random`]: CPython's Mersenne Twister (`random.seed`, `random.shuffle`).

pub mod random;
pub mod text;
pub mod url;

pub use text::{is_printable, is_space, str_repr, strip, write_str_repr};
pub use url::{unquote, unquote_strict, BadEscape};
