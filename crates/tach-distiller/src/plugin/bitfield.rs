//! The `bitfield` plugin: an integer whose bits say which fields matched.
//!
//! Parameters: `initial_bitfield` (default 0) and `flags`, a list of `{path, bit, value?}`.
//! A flag sets `1 << bit` when one of the trait's matches has exactly that full path
//! (compared as text, as stackdistiller did) and, if `value` is given, that match equals it
//! (Python equality: `1 == 1.0 == true`). When several matches share a path, the last one
//! counts. The plugin always produces a value, so the trait is present even with no match.

use crate::plugin::{
    FieldMatch, ParamValue, PluginParams, PluginValue, TraitPlugin, check_known_keys,
};

/// Sets bits according to which paths matched, and with which values.
#[derive(Debug, Clone, PartialEq)]
pub struct BitfieldPlugin {
    initial: i64,
    flags: Vec<BitFlag>,
}

#[derive(Debug, Clone, PartialEq)]
struct BitFlag {
    path: String,
    mask: i64,
    value: Option<ParamValue>,
}

/// Highest bit a flag may set: the field is a signed 64-bit integer.
const MAX_BIT: i64 = 62;

impl BitfieldPlugin {
    /// Reads `initial_bitfield` and `flags`.
    ///
    /// # Errors
    ///
    /// An unknown parameter or flag key, a flag without `path` or `bit`, a bit outside
    /// 0..=62, or values of the wrong kind.
    pub fn from_params(params: &PluginParams) -> Result<BitfieldPlugin, String> {
        params.check_known(&["initial_bitfield", "flags"])?;
        let initial = params.int_or("initial_bitfield", 0)?;
        let flags = match params.get("flags") {
            None | Some(ParamValue::Null) => Vec::new(),
            Some(ParamValue::List(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| flag(item).map_err(|e| format!("flag #{i}: {e}")))
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("`flags` must be a list, not {}", other.kind())),
        };
        Ok(BitfieldPlugin { initial, flags })
    }
}

fn flag(item: &ParamValue) -> Result<BitFlag, String> {
    let ParamValue::Map(entries) = item else {
        return Err(format!(
            "must be a mapping with `path` and `bit`, not {}",
            item.kind()
        ));
    };
    check_known_keys(
        entries.iter().map(|(k, _)| k.as_str()),
        &["path", "bit", "value"],
    )?;
    let get = |name: &str| entries.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let path = match get("path") {
        Some(ParamValue::Text(p)) => p.clone(),
        Some(other) => return Err(format!("`path` must be a string, not {}", other.kind())),
        None => return Err("missing `path`".to_owned()),
    };
    // stackdistiller applied int() to the bit, so "3" works as well as 3.
    let bit = match get("bit") {
        Some(ParamValue::Int(b)) => *b,
        Some(ParamValue::Text(s)) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("`bit` must be an integer, not `{s}`"))?,
        Some(other) => return Err(format!("`bit` must be an integer, not {}", other.kind())),
        None => return Err("missing `bit`".to_owned()),
    };
    if !(0..=MAX_BIT).contains(&bit) {
        return Err(format!("`bit` must be between 0 and {MAX_BIT}, not {bit}"));
    }
    Ok(BitFlag {
        path,
        mask: 1 << bit,
        value: get("value").cloned(),
    })
}

impl TraitPlugin for BitfieldPlugin {
    fn trait_value<'a>(&self, matches: &[FieldMatch<'a>]) -> Option<PluginValue<'a>> {
        let mut bits = self.initial;
        for flag in &self.flags {
            let Some(found) = matches.iter().rev().find(|m| m.path == flag.path) else {
                continue;
            };
            if flag
                .value
                .as_ref()
                .is_none_or(|want| want.equals_json(found.value))
            {
                bits |= flag.mask;
            }
        }
        Some(PluginValue::Int(bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, ParamValue)]) -> ParamValue {
        ParamValue::Map(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn plugin(initial: Option<i64>, flags: Vec<ParamValue>) -> Result<BitfieldPlugin, String> {
        let mut entries = vec![("flags".to_owned(), ParamValue::List(flags))];
        if let Some(i) = initial {
            entries.push(("initial_bitfield".to_owned(), ParamValue::Int(i)));
        }
        BitfieldPlugin::from_params(&PluginParams::new(entries))
    }

    fn text(s: &str) -> ParamValue {
        ParamValue::Text(s.to_owned())
    }

    fn value_of(plugin: &BitfieldPlugin, matches: &[(&str, &str)]) -> Option<PluginValue<'static>> {
        let values: Vec<(String, sonic_rs::Value)> = matches
            .iter()
            .map(|(p, v)| (p.to_string(), sonic_rs::from_str(v).unwrap()))
            .collect();
        let fm: Vec<FieldMatch<'_>> = values
            .iter()
            .map(|(p, v)| FieldMatch { path: p, value: v })
            .collect();
        match plugin.trait_value(&fm) {
            Some(PluginValue::Int(i)) => Some(PluginValue::Int(i)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bits_follow_paths_and_values() {
        let p = plugin(
            Some(0b1000_0000),
            vec![
                map(&[("path", text("payload.foo")), ("bit", ParamValue::Int(0))]),
                map(&[
                    ("path", text("payload.bar")),
                    ("bit", ParamValue::Int(1)),
                    ("value", text("x")),
                ]),
                map(&[
                    ("path", text("payload.baz")),
                    ("bit", text("2")),
                    ("value", ParamValue::Int(1)),
                ]),
            ],
        )
        .unwrap();
        assert_eq!(value_of(&p, &[]), Some(PluginValue::Int(0b1000_0000)));
        assert_eq!(
            value_of(&p, &[("payload.foo", "\"anything\"")]),
            Some(PluginValue::Int(0b1000_0001))
        );
        assert_eq!(
            value_of(&p, &[("payload.bar", "\"y\"")]),
            Some(PluginValue::Int(0b1000_0000))
        );
        assert_eq!(
            value_of(&p, &[("payload.bar", "\"x\"")]),
            Some(PluginValue::Int(0b1000_0010))
        );
        assert_eq!(
            value_of(&p, &[("payload.baz", "1.0")]),
            Some(PluginValue::Int(0b1000_0100))
        );
        assert_eq!(
            value_of(&p, &[("payload.baz", "true")]),
            Some(PluginValue::Int(0b1000_0100))
        );
        assert_eq!(
            value_of(
                &p,
                &[
                    ("payload.foo", "1"),
                    ("payload.bar", "\"x\""),
                    ("payload.baz", "1")
                ]
            ),
            Some(PluginValue::Int(0b1000_0111))
        );
        // Paths compare exactly; the last match of a repeated path counts.
        assert_eq!(
            value_of(&p, &[("payload.foo.x", "1")]),
            Some(PluginValue::Int(0b1000_0000))
        );
        assert_eq!(
            value_of(&p, &[("payload.bar", "\"x\""), ("payload.bar", "\"y\"")]),
            Some(PluginValue::Int(0b1000_0000))
        );
    }

    #[test]
    fn defaults_to_zero_without_flags() {
        let p = BitfieldPlugin::from_params(&PluginParams::default()).unwrap();
        assert_eq!(value_of(&p, &[("a", "1")]), Some(PluginValue::Int(0)));
    }

    #[test]
    fn bad_flags_are_reported() {
        let err = |flags| plugin(None, flags).unwrap_err();
        assert_eq!(
            err(vec![text("payload.foo")]),
            "flag #0: must be a mapping with `path` and `bit`, not a string"
        );
        assert_eq!(
            err(vec![map(&[("bit", ParamValue::Int(1))])]),
            "flag #0: missing `path`"
        );
        assert_eq!(
            err(vec![map(&[("path", text("a"))])]),
            "flag #0: missing `bit`"
        );
        assert_eq!(
            err(vec![map(&[
                ("path", text("a")),
                ("bit", ParamValue::Int(63))
            ])]),
            "flag #0: `bit` must be between 0 and 62, not 63"
        );
        assert_eq!(
            err(vec![map(&[("path", text("a")), ("bit", text("x"))])]),
            "flag #0: `bit` must be an integer, not `x`"
        );
        assert_eq!(
            err(vec![map(&[
                ("path", text("a")),
                ("bit", ParamValue::Int(1)),
                ("vaule", ParamValue::Int(1))
            ])]),
            "flag #0: unknown parameter `vaule` (expected `path`, `bit`, `value`)"
        );
        let bad_flags = PluginParams::new(vec![("flags".into(), text("x"))]);
        assert_eq!(
            BitfieldPlugin::from_params(&bad_flags).unwrap_err(),
            "`flags` must be a list, not a string"
        );
    }
}
