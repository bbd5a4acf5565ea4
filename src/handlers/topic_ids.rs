//! Topics named by id, as OffsetCommit v10+, OffsetFetch v10+ and
//! TxnOffsetCommit v6+ name them: shared by their handlers.

use crate::controller::MetadataImage;
use crate::protocol::Uuid;

/// Gives each topic of a request the name of its id, and takes out the
/// topics whose id the metadata does not know, returned as (id,
/// partitions) for their UNKNOWN_TOPIC_ID answers. `name` reaches a
/// topic's name field, `take_partitions` its partition numbers.
pub fn take_unknown_topic_ids<T>(
    topics: &mut Vec<T>,
    image: &MetadataImage,
    id: impl Fn(&T) -> Uuid,
    name: impl Fn(&mut T) -> &mut String,
    take_partitions: impl Fn(&mut T) -> Vec<i32>,
) -> Vec<(Uuid, Vec<i32>)> {
    let mut unknown = Vec::new();
    topics.retain_mut(|t| match image.ids.get(&id(t)) {
        Some(known) => {
            *name(t) = known.clone();
            true
        }
        None => {
            unknown.push((id(t), take_partitions(t)));
            false
        }
    });
    unknown
}

/// A metadata image holding one topic, for the handlers' unit tests.
#[cfg(test)]
pub fn image_with(topic: &str, partitions: i32) -> MetadataImage {
    let dir = tempfile::tempdir().unwrap();
    let c = crate::controller::Controller::open(dir.path(), 1, None, 1, 1).unwrap();
    c.create_topic(
        crate::controller::NewTopic {
            name: topic.into(),
            partitions,
            replication_factor: 1,
            assignments: Vec::new(),
            configs: Default::default(),
        },
        false,
    )
    .unwrap();
    (*c.image()).clone()
}
