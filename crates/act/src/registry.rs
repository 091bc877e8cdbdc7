//! The list of actions, written once (the `actions!` call in `lib.rs`): it
//! gives the `[actions.*]` sections, the names the configuration may use
//! ([`ActionName`]), and the configured actions built from those sections.

use serde::{Deserialize, Deserializer};

use crate::capability::Action;
use crate::ActError;

/// The name of a registered action (`kerio`), as the configuration's
/// per-incident lists give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActionName(pub(crate) &'static str);

impl ActionName {
    /// The registered action called `name`, if there is one.
    pub fn of(name: &str) -> Option<ActionName> {
        crate::ACTION_NAMES
            .iter()
            .find(|known| **known == name)
            .map(|known| ActionName(known))
    }

    /// The name as written in the configuration (`kerio`, `email`…).
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for ActionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl<'de> Deserialize<'de> for ActionName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ActionName::of(&name)
            .ok_or_else(|| serde::de::Error::unknown_variant(&name, crate::ACTION_NAMES))
    }
}

/// A configured action under its registered name.
pub struct Registered {
    /// Its `[actions.<name>]` section, and its name in the per-kind lists.
    pub name: ActionName,
    /// The action, built from its section.
    pub action: Box<dyn Action>,
}

/// An `[actions.*]` section the action refused (a program that does not
/// exist, a bad TLS pin…).
#[derive(Debug, thiserror::Error)]
#[error("actions.{section}")]
pub struct SectionError {
    /// The action whose section it is.
    pub section: &'static str,
    /// Why the action refused it.
    #[source]
    pub source: ActError,
}

/// Declares the registered actions: `name: module::Type(module::Config)`,
/// each `Type` built by `Type::new(Config)` and implementing [`Action`].
macro_rules! actions {
    ($($(#[$doc:meta])* $name:ident: $action:ty [$config:ty],)+) => {
        /// Every registered action's name, in registration order (the order
        /// in which actions of the same capability run).
        pub const ACTION_NAMES: &[&str] = &[$(stringify!($name)),+];

        /// The `[actions.*]` sections, one per registered action; an action
        /// runs when its section is present.
        #[derive(Clone, Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ActionSections {
            $($(#[$doc])* pub $name: Option<$config>,)+
        }

        impl ActionSections {
            /// Builds the configured actions, in registration order.
            pub fn build(&self) -> Result<Vec<$crate::registry::Registered>, $crate::registry::SectionError> {
                let mut built = Vec::new();
                $(
                    if let Some(config) = &self.$name {
                        let section = stringify!($name);
                        let action = <$action>::new(config.clone())
                            .map_err(|source| $crate::registry::SectionError { section, source })?;
                        built.push($crate::registry::Registered {
                            name: $crate::registry::ActionName(section),
                            action: Box::new(action),
                        });
                    }
                )+
                Ok(built)
            }
        }
    };
}
pub(crate) use actions;
