//! Just enough of the embedded consumer protocol ("consumer" protocol type)
//! to learn which topics a member subscribes to: the version-0 prefix of
//! `ConsumerProtocolSubscription` (version i16, topics [string], user data
//! nullable bytes), which every later version extends.

/// The protocol type of the Java consumer (and compatible clients).
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Why a subscription could not be parsed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("subscription is truncated")]
    Truncated,
    #[error("unsupported subscription version {0}")]
    BadVersion(i16),
    #[error("negative length {0} in subscription")]
    NegativeLength(i32),
    #[error("topic name is not UTF-8")]
    NotUtf8,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SubscriptionError> {
        if self.buf.len() < n {
            return Err(SubscriptionError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, SubscriptionError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, SubscriptionError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Parses the subscribed topic names out of a member's "consumer"
/// protocol metadata. Bounded by the input: every count is checked
/// against the bytes that remain before anything is allocated.
pub fn parse_subscription_topics(metadata: &[u8]) -> Result<Vec<String>, SubscriptionError> {
    let mut r = Reader { buf: metadata };
    let version = r.i16()?;
    if version < 0 {
        return Err(SubscriptionError::BadVersion(version));
    }
    let count = r.i32()?;
    if count < 0 {
        return Err(SubscriptionError::NegativeLength(count));
    }
    // Each topic needs at least its 2-byte length.
    if (count as usize) > r.buf.len() / 2 {
        return Err(SubscriptionError::Truncated);
    }
    let mut topics = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = r.i16()?;
        if len < 0 {
            return Err(SubscriptionError::NegativeLength(i32::from(len)));
        }
        let bytes = r.take(len as usize)?;
        let name = std::str::from_utf8(bytes).map_err(|_| SubscriptionError::NotUtf8)?;
        topics.push(name.to_string());
    }
    // user_data: nullable bytes; it must be present in full for the v0
    // schema to parse, as Kafka's reader requires.
    let user_data_bytes = r.i32()?;
    if user_data_bytes >= 0 {
        r.take(user_data_bytes as usize)?;
    } else if user_data_bytes != -1 {
        return Err(SubscriptionError::NegativeLength(user_data_bytes));
    }
    Ok(topics)
}

#[cfg(test)]
pub(crate) fn encode_subscription(version: i16, topics: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        out.extend_from_slice(&(t.len() as i16).to_be_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    out.extend_from_slice(&(-1i32).to_be_bytes());
    // Later versions append fields (owned partitions, generation, rack).
    if version >= 1 {
        out.extend_from_slice(&0i32.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v0_and_later_prefixes() {
        let v0 = encode_subscription(0, &["a", "topic-b"]);
        assert_eq!(
            parse_subscription_topics(&v0).unwrap(),
            vec!["a", "topic-b"]
        );
        let v3 = encode_subscription(3, &["x"]);
        assert_eq!(parse_subscription_topics(&v3).unwrap(), vec!["x"]);
        let none = encode_subscription(1, &[]);
        assert!(parse_subscription_topics(&none).unwrap().is_empty());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(
            parse_subscription_topics(&[]),
            Err(SubscriptionError::Truncated)
        );
        assert_eq!(
            parse_subscription_topics(&[0xff, 0xff]),
            Err(SubscriptionError::BadVersion(-1))
        );
        // Huge count with no data behind it.
        let mut b = vec![0, 0];
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(
            parse_subscription_topics(&b),
            Err(SubscriptionError::Truncated)
        );
        // Negative count.
        let mut b = vec![0, 0];
        b.extend_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(
            parse_subscription_topics(&b),
            Err(SubscriptionError::NegativeLength(-5))
        );
        // Truncated every which way.
        let full = encode_subscription(0, &["abc", "de"]);
        for cut in 0..full.len() {
            assert!(
                parse_subscription_topics(&full[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }
}
