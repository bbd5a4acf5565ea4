//! One config value: Kafka's config types, parsing a string into a typed
//! [`ConfigValue`] the way Kafka's `ConfigDef` does (trimmed, `true`/`false`
//! case-insensitive, lists split on commas), validators, and formatting back
//! to the string DescribeConfigs reports.

use super::error::ConfigError;
use super::{MAX_CONFIG_VALUE_BYTES, MAX_LIST_ITEMS};

/// Kafka's config types, with their DescribeConfigs `ConfigType` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

impl ConfigType {
    /// The wire code (DescribeConfigs `ConfigType`, an int8).
    pub fn code(self) -> i8 {
        self as i8
    }

    /// Kafka's lower-case type name, as in its documentation tables.
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "boolean",
            ConfigType::String => "string",
            ConfigType::Int => "int",
            ConfigType::Short => "short",
            ConfigType::Long => "long",
            ConfigType::Double => "double",
            ConfigType::List => "list",
            ConfigType::Class => "class",
            ConfigType::Password => "password",
        }
    }

    /// Whether values of this type are hidden in DescribeConfigs.
    pub fn is_sensitive(self) -> bool {
        self == ConfigType::Password
    }
}

/// A parsed config value.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    /// The config has no value (Kafka's `null` default).
    Null,
    Bool(bool),
    Int(i32),
    Short(i16),
    Long(i64),
    Double(f64),
    /// `String`, `Class` and `Password` values.
    Str(String),
    List(Vec<String>),
}

impl ConfigValue {
    /// The value as Kafka's `ConfigDef.convertToString` renders it; `None`
    /// for null.
    pub fn to_kafka_string(&self) -> Option<String> {
        match self {
            ConfigValue::Null => None,
            ConfigValue::Bool(b) => Some(b.to_string()),
            ConfigValue::Int(v) => Some(v.to_string()),
            ConfigValue::Short(v) => Some(v.to_string()),
            ConfigValue::Long(v) => Some(v.to_string()),
            ConfigValue::Double(v) => Some(format_double(*v)),
            ConfigValue::Str(s) => Some(s.clone()),
            ConfigValue::List(items) => Some(items.join(",")),
        }
    }
}

/// Formats a double like Java's `Double.toString` for the values configs
/// use: `0.5`, `1.0`, `1.7976931348623157E308`.
pub fn format_double(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".to_string()
        } else if v > 0.0 {
            "Infinity".to_string()
        } else {
            "-Infinity".to_string()
        };
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-3..1e7).contains(&abs) {
        // Java switches to scientific notation outside [1e-3, 1e7).
        let s = format!("{v:e}");
        // Rust: "1.7976931348623157e308"; Java: "1.7976931348623157E308".
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        return format!("{mantissa}E{exp}");
    }
    if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// A check applied to a parsed value (Kafka's `ConfigDef.Validator`s).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Validator {
    None,
    /// Numeric value `>= min`.
    AtLeast(i64),
    /// Numeric value in `[min, max]`.
    Between(i64, i64),
    /// Double value in `[min, max]`.
    DoubleBetween(f64, f64),
    /// String value equal to one of these (case-sensitive, as Kafka).
    OneOf(&'static [&'static str]),
    /// Every list item equal to one of these.
    ListOf(&'static [&'static str]),
    /// Gzip level: 1..=9 or -1 (the library default).
    GzipLevel,
    /// Throttled replicas: empty, `*`, or `partition:broker` pairs.
    ThrottledReplicas,
}

impl Validator {
    /// Checks `value` (already parsed) and describes what was expected on
    /// failure.
    pub fn check(&self, value: &ConfigValue) -> Result<(), String> {
        let number = match value {
            ConfigValue::Int(v) => Some(i64::from(*v)),
            ConfigValue::Short(v) => Some(i64::from(*v)),
            ConfigValue::Long(v) => Some(*v),
            _ => None,
        };
        match (*self, value) {
            (Validator::None, _) | (_, ConfigValue::Null) => Ok(()),
            (Validator::AtLeast(min), _) => match number {
                Some(n) if n >= min => Ok(()),
                Some(_) => Err(format!("expected a value of at least {min}")),
                None => Err("expected a number".to_string()),
            },
            (Validator::Between(min, max), _) => match number {
                Some(n) if (min..=max).contains(&n) => Ok(()),
                Some(_) => Err(format!("expected a value between {min} and {max}")),
                None => Err("expected a number".to_string()),
            },
            (Validator::DoubleBetween(min, max), ConfigValue::Double(d)) => {
                if *d >= min && *d <= max {
                    Ok(())
                } else {
                    Err(format!(
                        "expected a value between {} and {}",
                        format_double(min),
                        format_double(max)
                    ))
                }
            }
            (Validator::DoubleBetween(..), _) => Err("expected a number".to_string()),
            (Validator::OneOf(allowed), ConfigValue::Str(s)) => {
                if allowed.contains(&s.as_str()) {
                    Ok(())
                } else {
                    Err(format!("expected one of: {}", allowed.join(", ")))
                }
            }
            (Validator::OneOf(_), _) => Err("expected a string".to_string()),
            (Validator::ListOf(allowed), ConfigValue::List(items)) => {
                if items.iter().all(|i| allowed.contains(&i.as_str())) {
                    Ok(())
                } else {
                    Err(format!(
                        "expected a comma-separated list of: {}",
                        allowed.join(", ")
                    ))
                }
            }
            (Validator::ListOf(_), _) => Err("expected a list".to_string()),
            (Validator::GzipLevel, _) => match number {
                Some(n) if (1..=9).contains(&n) || n == -1 => Ok(()),
                _ => Err("expected a value between 1 and 9, or -1".to_string()),
            },
            (Validator::ThrottledReplicas, ConfigValue::List(items)) => {
                let ok = (items.len() == 1 && items[0] == "*")
                    || items.iter().all(|i| {
                        i.split_once(':').is_some_and(|(p, b)| {
                            p.trim().parse::<i32>().is_ok() && b.trim().parse::<i32>().is_ok()
                        })
                    });
                if ok {
                    Ok(())
                } else {
                    Err("expected '*' or a list of partition:broker pairs".to_string())
                }
            }
            (Validator::ThrottledReplicas, _) => Err("expected a list".to_string()),
        }
    }
}

/// Parses `raw` as a value of type `ty` the way Kafka's `ConfigDef.parseType`
/// does, then applies `validator`. `name` is only used in the error.
pub fn parse_value(
    name: &str,
    raw: &str,
    ty: ConfigType,
    validator: Validator,
) -> Result<ConfigValue, ConfigError> {
    if raw.len() > MAX_CONFIG_VALUE_BYTES {
        return Err(ConfigError::invalid_value(
            name,
            raw,
            format!("values are limited to {MAX_CONFIG_VALUE_BYTES} bytes"),
        ));
    }
    let fail = |expected: &str| ConfigError::invalid_value(name, raw, expected);
    let trimmed = raw.trim();
    let value = match ty {
        ConfigType::Boolean => {
            if trimmed.eq_ignore_ascii_case("true") {
                ConfigValue::Bool(true)
            } else if trimmed.eq_ignore_ascii_case("false") {
                ConfigValue::Bool(false)
            } else {
                return Err(fail("expected a boolean (true or false)"));
            }
        }
        ConfigType::Int => ConfigValue::Int(parse_integer::<i32>(trimmed).map_err(|e| fail(&e))?),
        ConfigType::Short => {
            ConfigValue::Short(parse_integer::<i16>(trimmed).map_err(|e| fail(&e))?)
        }
        ConfigType::Long => ConfigValue::Long(parse_integer::<i64>(trimmed).map_err(|e| fail(&e))?),
        ConfigType::Double => match trimmed.parse::<f64>() {
            Ok(d) if d.is_finite() => ConfigValue::Double(d),
            _ => return Err(fail("expected a number")),
        },
        ConfigType::String | ConfigType::Class => ConfigValue::Str(trimmed.to_string()),
        ConfigType::Password => ConfigValue::Str(raw.to_string()),
        ConfigType::List => ConfigValue::List(parse_list(trimmed).map_err(|e| fail(&e))?),
    };
    validator
        .check(&value)
        .map_err(|expected| fail(&expected))?;
    Ok(value)
}

/// Splits a Kafka list value: empty string is the empty list, otherwise
/// items separated by commas with surrounding whitespace removed.
pub fn parse_list(trimmed: &str) -> Result<Vec<String>, String> {
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<String> = trimmed.split(',').map(|s| s.trim().to_string()).collect();
    if items.len() > MAX_LIST_ITEMS {
        return Err(format!("lists are limited to {MAX_LIST_ITEMS} items"));
    }
    Ok(items)
}

trait Integer: Sized + std::str::FromStr + Copy + std::fmt::Display {
    const MIN: Self;
    const MAX: Self;
    const WHAT: &'static str;
}

impl Integer for i16 {
    const MIN: Self = i16::MIN;
    const MAX: Self = i16::MAX;
    const WHAT: &'static str = "a 16-bit integer";
}

impl Integer for i32 {
    const MIN: Self = i32::MIN;
    const MAX: Self = i32::MAX;
    const WHAT: &'static str = "an integer";
}

impl Integer for i64 {
    const MIN: Self = i64::MIN;
    const MAX: Self = i64::MAX;
    const WHAT: &'static str = "a long integer";
}

fn parse_integer<T: Integer>(s: &str) -> Result<T, String> {
    if let Ok(v) = s.parse::<T>() {
        return Ok(v);
    }
    // Distinguish "not a number" from "out of range" for a better message.
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        Err(format!(
            "expected {} between {} and {}",
            T::WHAT,
            T::MIN,
            T::MAX
        ))
    } else {
        Err(format!("expected {}", T::WHAT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, ty: ConfigType) -> Result<ConfigValue, String> {
        parse_value("k", raw, ty, Validator::None).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_like_kafka() {
        assert_eq!(
            parse(" TRUE ", ConfigType::Boolean),
            Ok(ConfigValue::Bool(true))
        );
        assert_eq!(
            parse("false", ConfigType::Boolean),
            Ok(ConfigValue::Bool(false))
        );
        assert_eq!(parse(" 42 ", ConfigType::Int), Ok(ConfigValue::Int(42)));
        assert_eq!(parse("+7", ConfigType::Int), Ok(ConfigValue::Int(7)));
        assert_eq!(parse("-1", ConfigType::Long), Ok(ConfigValue::Long(-1)));
        assert_eq!(parse("3", ConfigType::Short), Ok(ConfigValue::Short(3)));
        assert_eq!(
            parse("0.5", ConfigType::Double),
            Ok(ConfigValue::Double(0.5))
        );
        assert_eq!(
            parse("  x ", ConfigType::String),
            Ok(ConfigValue::Str("x".into()))
        );
        assert_eq!(parse("", ConfigType::List), Ok(ConfigValue::List(vec![])));
        assert_eq!(
            parse("a, b ,c", ConfigType::List),
            Ok(ConfigValue::List(vec!["a".into(), "b".into(), "c".into()]))
        );
    }

    #[test]
    fn explains_bad_values() {
        let e = parse("x", ConfigType::Int).unwrap_err();
        assert_eq!(
            e,
            "invalid value 'x' for configuration 'k': expected an integer"
        );
        let e = parse("99999999999", ConfigType::Int).unwrap_err();
        assert!(e.contains("between -2147483648 and 2147483647"), "{e}");
        let e = parse("yes", ConfigType::Boolean).unwrap_err();
        assert!(e.ends_with("expected a boolean (true or false)"), "{e}");
        let e = parse("NaN", ConfigType::Double).unwrap_err();
        assert!(e.ends_with("expected a number"), "{e}");
        let e = parse("", ConfigType::Long).unwrap_err();
        assert!(e.ends_with("expected a long integer"), "{e}");
    }

    #[test]
    fn validators() {
        let v = |raw: &str, ty, val| parse_value("k", raw, ty, val).map(|_| ());
        assert!(v("1", ConfigType::Int, Validator::AtLeast(1)).is_ok());
        assert!(v("0", ConfigType::Int, Validator::AtLeast(1)).is_err());
        assert!(v(
            "0.7",
            ConfigType::Double,
            Validator::DoubleBetween(0.0, 1.0)
        )
        .is_ok());
        assert!(v(
            "1.5",
            ConfigType::Double,
            Validator::DoubleBetween(0.0, 1.0)
        )
        .is_err());
        let ts = Validator::OneOf(&["CreateTime", "LogAppendTime"]);
        assert!(v("LogAppendTime", ConfigType::String, ts).is_ok());
        assert!(v("logappendtime", ConfigType::String, ts).is_err());
        let cp = Validator::ListOf(&["compact", "delete"]);
        assert!(v("compact,delete", ConfigType::List, cp).is_ok());
        assert!(v("compact,", ConfigType::List, cp).is_err());
        assert!(v("-1", ConfigType::Int, Validator::GzipLevel).is_ok());
        assert!(v("0", ConfigType::Int, Validator::GzipLevel).is_err());
        assert!(v("*", ConfigType::List, Validator::ThrottledReplicas).is_ok());
        assert!(v("0:1, 1:1", ConfigType::List, Validator::ThrottledReplicas).is_ok());
        assert!(v("0-1", ConfigType::List, Validator::ThrottledReplicas).is_err());
        let e = parse_value("k", "0", ConfigType::Int, Validator::AtLeast(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value '0' for configuration 'k': expected a value of at least 1"
        );
    }

    #[test]
    fn limits() {
        let big = "1,".repeat(MAX_LIST_ITEMS + 1);
        assert!(parse(&big, ConfigType::List).is_err());
        let huge = "x".repeat(MAX_CONFIG_VALUE_BYTES + 1);
        assert!(parse(&huge, ConfigType::String).is_err());
    }

    #[test]
    fn formats_like_java() {
        assert_eq!(format_double(0.5), "0.5");
        assert_eq!(format_double(1.0), "1.0");
        assert_eq!(format_double(0.0), "0.0");
        assert_eq!(format_double(f64::MAX), "1.7976931348623157E308");
        assert_eq!(
            ConfigValue::List(vec!["a".into(), "b".into()])
                .to_kafka_string()
                .unwrap(),
            "a,b"
        );
        assert_eq!(ConfigValue::Null.to_kafka_string(), None);
    }
}
