//! Diagnostics: a complaint about the config, tied to `file:line:column`.

use std::fmt;
use std::sync::Arc;

/// Whether a diagnostic stops the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The config is rejected.
    Error,
    /// The config is accepted; the reader is told what was ignored or changed.
    Warning,
}

/// A place in a config file. Lines and columns count from 1; column counts characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// The file name as it was given (the top file, an include or the hba_file).
    pub file: Arc<str>,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl Pos {
    /// The start of `file`, for complaints about the file as a whole.
    pub fn start_of(file: &Arc<str>) -> Pos {
        Pos {
            file: file.clone(),
            line: 1,
            column: 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One complaint. With `found` it reads "expected X, found Y"; without, `expected` is the whole
/// complaint ("password is not set").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// File name as given.
    pub file: Arc<str>,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// What the reader wanted here, or the complaint itself when `found` is `None`.
    pub expected: String,
    /// What stood there instead.
    pub found: Option<String>,
    /// A suggestion ("did you mean 'pool_size'?").
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error "expected X, found Y" at `pos`.
    pub fn expected(pos: &Pos, expected: impl Into<String>, found: impl Into<String>) -> Self {
        Self::new(Severity::Error, pos, expected.into(), Some(found.into()))
    }

    /// An error whose text is the complaint itself.
    pub fn error(pos: &Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, pos, message.into(), None)
    }

    /// A warning whose text is the complaint itself.
    pub fn warning(pos: &Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, pos, message.into(), None)
    }

    /// The same diagnostic with a hint attached.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this diagnostic rejects the config.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    fn new(severity: Severity, pos: &Pos, expected: String, found: Option<String>) -> Self {
        Diagnostic {
            severity,
            file: pos.file.clone(),
            line: pos.line,
            column: pos.column,
            expected,
            found,
            hint: None,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        match &self.found {
            Some(found) => write!(f, "expected {}, found {}", self.expected, found)?,
            None => f.write_str(&self.expected)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Diagnostics gathered while reading one config: errors and warnings in file order.
#[derive(Debug, Default)]
pub struct Diagnostics {
    list: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records one diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.list.push(d);
    }

    /// Records an error at `pos`.
    pub fn error(&mut self, pos: &Pos, message: impl Into<String>) {
        self.push(Diagnostic::error(pos, message));
    }

    /// Records a warning at `pos`.
    pub fn warn(&mut self, pos: &Pos, message: impl Into<String>) {
        self.push(Diagnostic::warning(pos, message));
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }

    /// Splits into (errors, warnings).
    pub fn split(self) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        self.list.into_iter().partition(Diagnostic::is_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_place_expected_and_found() {
        let pos = Pos {
            file: "odyssey.conf".into(),
            line: 12,
            column: 5,
        };
        let d = Diagnostic::expected(&pos, "a number for pool_size", "\"abc\"");
        assert_eq!(
            d.to_string(),
            "odyssey.conf:12:5: expected a number for pool_size, found \"abc\""
        );
        let w = Diagnostic::warning(&pos, "x is deprecated").with_hint("remove it");
        assert_eq!(
            w.to_string(),
            "odyssey.conf:12:5: warning: x is deprecated\n  hint: remove it"
        );
    }
}
