//! Test helpers: the event a parsed line must be, or a panic saying what
//! it was instead.

use mailfuse_core::{AuthFailure, Delivery, Event, ServerBlock, Submission};

use crate::Parsed;

pub(crate) fn submission(parsed: Parsed<'_>) -> Submission<'_> {
    match parsed {
        Parsed::Event(Event::Submission(submission)) => submission,
        other => panic!("not a submission: {other:?}"),
    }
}

pub(crate) fn delivery(parsed: Parsed<'_>) -> Delivery<'_> {
    match parsed {
        Parsed::Event(Event::Delivery(delivery)) => delivery,
        other => panic!("not a delivery: {other:?}"),
    }
}

pub(crate) fn auth_failure(parsed: Parsed<'_>) -> AuthFailure<'_> {
    match parsed {
        Parsed::Event(Event::AuthFailure(failure)) => failure,
        other => panic!("not an auth failure: {other:?}"),
    }
}

pub(crate) fn block(parsed: Parsed<'_>) -> ServerBlock<'_> {
    match parsed {
        Parsed::Event(Event::ServerBlock(block)) => block,
        other => panic!("not a block: {other:?}"),
    }
}
