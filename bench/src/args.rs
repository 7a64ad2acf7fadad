//! A tiny command line parser: `prog COMMAND --name value ...`.

use std::collections::HashMap;

/// A parsed command line.
pub struct Args {
    /// The subcommand (first argument).
    pub command: String,
    values: HashMap<String, String>,
}

impl Args {
    /// Parses `std::env::args()`; exits with a usage message on a malformed line.
    pub fn from_env(usage: &str) -> Args {
        let mut it = std::env::args().skip(1);
        let command = it.next().unwrap_or_else(|| fail(usage, "missing command"));
        let mut values = HashMap::new();
        while let Some(name) = it.next() {
            let Some(name) = name.strip_prefix("--") else {
                fail(usage, &format!("unexpected argument {name:?}"));
            };
            let value = it
                .next()
                .unwrap_or_else(|| fail(usage, &format!("--{name} needs a value")));
            values.insert(name.to_owned(), value);
        }
        Args { command, values }
    }

    /// A string option.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A string option the command cannot run without; exits with `usage` when missing.
    pub fn required(&self, name: &str, usage: &str) -> &str {
        self.str(name)
            .unwrap_or_else(|| fail(usage, &format!("--{name} is required")))
    }

    /// A non-negative integer option with a default.
    pub fn usize(&self, name: &str, default: usize) -> usize {
        match self.values.get(name) {
            None => default,
            Some(v) => v
                .replace('_', "")
                .parse()
                .unwrap_or_else(|_| fail("", &format!("--{name} must be an integer, got {v:?}"))),
        }
    }

    /// A comma-separated list of integers with a default.
    pub fn list(&self, name: &str, default: &[usize]) -> Vec<usize> {
        match self.values.get(name) {
            None => default.to_vec(),
            Some(v) => v
                .split(',')
                .map(|x| {
                    x.trim().replace('_', "").parse().unwrap_or_else(|_| {
                        fail("", &format!("--{name} must list integers, got {v:?}"))
                    })
                })
                .collect(),
        }
    }
}

/// Prints `error: msg` and the usage, and exits with status 2 (a malformed command line).
pub fn fail(usage: &str, msg: &str) -> ! {
    eprintln!("error: {msg}\n{usage}");
    std::process::exit(2)
}
