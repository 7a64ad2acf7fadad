//! Python arguments to the core's types: strings, connection ids, and metas (a dict is
//! written out as compact JSON here, in Rust, without going through the `json` module).

use crate::errors;
use presence_core::{push_json_str, ErrorKind};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::fmt::Write;

/// How deep a dict meta may nest (objects and arrays): the core's bound (64, which it
/// checks again on the JSON text, and on a str meta alone). Checked here while writing the
/// dict out, so that a reference cycle, or a very deep dict, stops early instead of
/// recursing.
const MAX_DEPTH: usize = 64;

/// The type name of `obj`, for error messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

fn not_utf8(py: Python<'_>, what: &str) -> PyErr {
    errors::error(
        py,
        ErrorKind::InvalidUtf8,
        &format!("{what} is not valid UTF-8 (it holds a lone surrogate)"),
    )
}

/// A `str` argument, borrowed as UTF-8.
pub fn text<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a str> {
    let Ok(s) = obj.cast::<PyString>() else {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a str, not {}",
            type_name(obj)
        )));
    };
    s.to_str().map_err(|_| not_utf8(obj.py(), what))
}

/// A time to live in seconds (an int or a float, not a bool), for the core to bound.
pub fn ttl(obj: &Bound<'_, PyAny>) -> PyResult<std::time::Duration> {
    if obj.is_instance_of::<PyBool>()
        || !(obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>())
    {
        return Err(PyTypeError::new_err(format!(
            "ttl must be a number of seconds (int or float), not {}",
            type_name(obj)
        )));
    }
    let secs: f64 = obj.extract()?;
    // Beyond the core's 30 days anyway; bounded here so the conversion cannot overflow.
    if !(0.0..=1e12).contains(&secs) {
        return Err(errors::error(
            obj.py(),
            ErrorKind::InvalidArgument,
            &format!("ttl must be 0.001 to 2592000 seconds (30 days), got {secs}"),
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// A connection id: an int in 0..2**64 (a bool is refused: it is surely a mistake).
pub fn conn(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err("conn must be an int, not bool"));
    }
    match obj.extract::<u64>() {
        Ok(v) => Ok(v),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            let got = match obj.extract::<i64>() {
                Ok(v) => v.to_string(),
                Err(_) => "an int outside that range".to_owned(),
            };
            Err(PyValueError::new_err(format!(
                "conn must be an int from 0 to 2**64-1, got {got}"
            )))
        }
        Err(e) if e.is_instance_of::<PyTypeError>(obj.py()) => Err(PyTypeError::new_err(format!(
            "conn must be an int, not {}",
            type_name(obj)
        ))),
        Err(e) => Err(e),
    }
}

/// Appends the JSON text of a meta argument (`None`, a `str` of JSON, or a `dict`) to
/// `out` and returns whether there was one. A dict longer than `max` bytes as JSON is
/// refused as soon as its text passes the limit.
pub fn push_meta(obj: Option<&Bound<'_, PyAny>>, max: usize, out: &mut String) -> PyResult<bool> {
    let Some(obj) = obj else {
        return Ok(false);
    };
    if let Ok(s) = obj.cast::<PyString>() {
        // The engine checks the text: a JSON object, its nesting, its length.
        out.push_str(s.to_str().map_err(|_| not_utf8(obj.py(), "meta"))?);
        return Ok(true);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let start = out.len();
        let mut writer = JsonWriter { out, start, max };
        let result = writer.dict(d, 1);
        if result.is_err() {
            out.truncate(start);
        }
        return result.map(|()| true);
    }
    Err(PyTypeError::new_err(format!(
        "meta must be a dict, a str holding a JSON object, or None, not {}",
        type_name(obj)
    )))
}

struct JsonWriter<'o> {
    out: &'o mut String,
    start: usize,
    max: usize,
}

impl JsonWriter<'_> {
    fn too_long(&self, py: Python<'_>) -> PyErr {
        errors::error(
            py,
            ErrorKind::TooLong,
            &format!(
                "meta is over {} bytes as JSON, the limit is {}",
                self.max, self.max
            ),
        )
    }

    fn check_len(&self, py: Python<'_>) -> PyResult<()> {
        if self.out.len() - self.start > self.max {
            return Err(self.too_long(py));
        }
        Ok(())
    }

    fn string(&mut self, s: &Bound<'_, PyString>, what: &str) -> PyResult<()> {
        let text = s.to_str().map_err(|_| not_utf8(s.py(), what))?;
        if text.len() > self.max {
            // Its JSON text is at least as long: no need to copy it to find out.
            return Err(self.too_long(s.py()));
        }
        push_json_str(self.out, text);
        Ok(())
    }

    fn dict(&mut self, d: &Bound<'_, PyDict>, depth: usize) -> PyResult<()> {
        self.out.push('{');
        for (i, (k, v)) in d.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let Ok(k) = k.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "meta keys must be str, not {}",
                    type_name(&k)
                )));
            };
            self.string(k, "a meta key")?;
            self.out.push(':');
            self.value(&v, depth)?;
            self.check_len(d.py())?;
        }
        self.out.push('}');
        self.check_len(d.py())
    }

    fn value(&mut self, v: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
        let py = v.py();
        if v.is_none() {
            self.out.push_str("null");
        } else if let Ok(b) = v.cast::<PyBool>() {
            self.out
                .push_str(if b.is_true() { "true" } else { "false" });
        } else if let Ok(s) = v.cast::<PyString>() {
            self.string(s, "a meta value")?;
        } else if let Ok(i) = v.cast::<PyInt>() {
            if let Ok(n) = i.extract::<i64>() {
                let _ = write!(self.out, "{n}");
            } else if let Ok(n) = i.extract::<u64>() {
                let _ = write!(self.out, "{n}");
            } else {
                // Beyond 64 bits: int's own repr (not a subclass's) is exact JSON.
                let digits = py.get_type::<PyInt>().getattr("__repr__")?.call1((i,))?;
                self.out.push_str(digits.cast::<PyString>()?.to_str()?);
            }
        } else if let Ok(f) = v.cast::<PyFloat>() {
            let x = f.value();
            if !x.is_finite() {
                return Err(errors::error(
                    py,
                    ErrorKind::InvalidMeta,
                    &format!("meta numbers must be finite for JSON, got {x}"),
                ));
            }
            push_float(self.out, x);
        } else if depth >= MAX_DEPTH {
            return Err(errors::error(
                py,
                ErrorKind::InvalidMeta,
                &format!("meta nests deeper than {MAX_DEPTH} levels (or holds a reference cycle)"),
            ));
        } else if let Ok(d) = v.cast::<PyDict>() {
            self.dict(d, depth + 1)?;
        } else if let Ok(l) = v.cast::<PyList>() {
            self.out.push('[');
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.value(&item, depth + 1)?;
                self.check_len(py)?;
            }
            self.out.push(']');
        } else if let Ok(t) = v.cast::<PyTuple>() {
            self.out.push('[');
            for (i, item) in t.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.value(&item, depth + 1)?;
                self.check_len(py)?;
            }
            self.out.push(']');
        } else {
            return Err(PyTypeError::new_err(format!(
                "meta values must be dict, list, tuple, str, int, float, bool or None, not {}",
                type_name(v)
            )));
        }
        Ok(())
    }
}

/// Appends a finite float as `repr(x)` writes it (and so `json.dumps`): `{:?}` is the same
/// shortest text that reads back to the same f64, with a '.' or an exponent so that JSON
/// readers see a float again, and it switches to an exponent at the same magnitudes as
/// `repr`; only the exponent is spelled differently (`1e16`, `1.5e-7` against `repr`'s
/// `1e+16`, `1.5e-07`).
fn push_float(out: &mut String, x: f64) {
    let start = out.len();
    let _ = write!(out, "{x:?}");
    let Some(e) = out[start..].find('e').map(|i| start + i) else {
        return;
    };
    let (negative, digits) = match out[e + 1..].strip_prefix('-') {
        Some(d) => (true, d.to_owned()),
        None => (false, out[e + 1..].to_owned()),
    };
    out.truncate(e + 1);
    out.push(if negative { '-' } else { '+' });
    if digits.len() < 2 {
        out.push('0');
    }
    out.push_str(&digits);
}
