//! Group events: DingTalk's `chat_*` and our `chat_create`.

use crate::normalise::{Ctx, UNIONS, USERS};
use crate::{CanonicalEvent, EventKind, NormaliseError};
use dingguard_dingtalk::{Payload, fields};

use fields::{CHAT, CHAT_ID, OPEN_CONVERSATION_ID as OPEN_CONVERSATION};

/// The group's other id, when the payload names it both ways.
pub(crate) fn group_alias(p: &Payload<'_>) -> Option<String> {
    let (chat, open) = (p.text(CHAT_ID)?, p.text(OPEN_CONVERSATION)?);
    (chat != open).then_some(open)
}
use fields::{OPERATOR, OPERATOR_UNION_ID as OPERATOR_UNION};

/// `None` when the type is not a group event.
pub(crate) fn normalise(
    ctx: &Ctx<'_>,
    p: &Payload<'_>,
    event_type: &str,
) -> Result<Option<CanonicalEvent>, NormaliseError> {
    if !matches!(
        event_type,
        "chat_create"
            | "chat_add_member"
            | "chat_remove_member"
            | "chat_quit"
            | "chat_disband"
            | "chat_update_owner"
            | "chat_update_title"
    ) {
        return Ok(None);
    }
    let chat_id = p.require(p.text(CHAT), fields::CHAT)?;
    let operator = ctx.one_person(p, OPERATOR, OPERATOR_UNION);
    let (actor, kind) = match event_type {
        "chat_create" => {
            let owner = p.id(fields::OWNER);
            let members = ctx.members(ctx.people(p, USERS, UNIONS));
            let title = p.text(fields::TITLE);
            (
                operator.or_else(|| owner.clone()),
                EventKind::GroupCreated { chat_id, title, owner, members, inferred: false },
            )
        }
        "chat_add_member" => {
            let members = ctx.members(p.require_list(ctx.people(p, USERS, UNIONS), fields::USER_ID)?);
            (operator.clone(), EventKind::MembersAdded { chat_id, operator, members })
        }
        "chat_remove_member" => {
            let members = ctx.members(p.require_list(ctx.people(p, USERS, UNIONS), fields::USER_ID)?);
            (operator.clone(), EventKind::MembersRemoved { chat_id, operator, members })
        }
        "chat_quit" => {
            // The leaver is the `operator`; older payloads may name them in `userId` instead.
            let user = p.require(operator.or_else(|| ctx.one_person(p, USERS, UNIONS)), fields::OPERATOR)?;
            (Some(user.clone()), EventKind::MemberQuit { chat_id, user })
        }
        "chat_disband" => (operator.clone(), EventKind::GroupDisbanded { chat_id, operator }),
        "chat_update_owner" => {
            let new_owner = p.require(p.id(fields::OWNER), fields::OWNER)?;
            (operator, EventKind::GroupOwnerChanged { chat_id, new_owner })
        }
        _ => {
            let title = p.require(p.text(fields::TITLE), fields::TITLE)?;
            (operator.clone(), EventKind::GroupRenamed { chat_id, title, operator })
        }
    };
    let mut event = ctx.event(actor.as_deref(), kind);
    event.group_alias = group_alias(p);
    Ok(Some(event))
}
