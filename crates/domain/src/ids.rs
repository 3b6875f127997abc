//! Identifiers as newtypes, so that a session id can never be passed where an application id is meant.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

id_type!(
    /// The id of an application: a tenant that owns API keys, workflows, sessions and entities.
    ApplicationId
);
id_type!(
    /// The id of a verification session (`session_id` on the wire).
    SessionId
);
id_type!(
    /// The id of a workflow (`workflow_id` on the wire).
    WorkflowId
);
id_type!(
    /// The id of a User or Business (`didit_internal_id` on the wire).
    EntityId
);
id_type!(
    /// The id of a webhook destination (`id` of `/v3/webhook/destinations/`).
    DestinationId
);
id_type!(
    /// The id of one delivery of an event to one destination (`delivery_id`).
    DeliveryId
);
id_type!(
    /// The id of a webhook event, the same in every delivery of it (`event_id`).
    EventId
);
id_type!(
    /// The id of a reviewer: a person who signs in to the review console.
    ReviewerId
);
