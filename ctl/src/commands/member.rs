//! `member list|add|remove|update|promote`.

use capstan_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest, MemberUpdateRequest,
    ResponseHeader,
};
use clap::Subcommand;

use crate::args::{GlobalArgs, OutputFormat};
use crate::connect;
use crate::error::bad_args;
use crate::output::go_fmt::{quote, strconv_error};
use crate::output::{Output, model, refuse_table, table};

#[derive(Subcommand, Debug, Clone)]
pub enum MemberCommand {
    /// Lists all members in the cluster.
    List,
    /// Adds a member into the cluster.
    Add {
        /// The new member's name.
        name: Vec<String>,
        /// Comma-separated peer URLs for the new member.
        #[arg(long, default_value = "")]
        peer_urls: String,
        /// Add the member as a Raft learner (non-voting).
        #[arg(long)]
        learner: bool,
    },
    /// Removes a member from the cluster.
    Remove { id: Option<String> },
    /// Updates a member's peer URLs.
    Update {
        id: Option<String>,
        /// Comma-separated peer URLs for the updated member.
        #[arg(long, default_value = "")]
        peer_urls: String,
    },
    /// Promotes a learner to a voting member.
    Promote { id: Option<String> },
}

pub async fn run(global: &GlobalArgs, command: MemberCommand) -> anyhow::Result<()> {
    let mut out = Output::new(global.write_out, global.hex);
    match command {
        MemberCommand::List => {
            let conn = connect::connect(global).await?;
            let r = conn.call(conn.cluster().member_list(MemberListRequest { linearizable: false })).await?;
            match out.format {
                OutputFormat::Simple => {
                    for row in rows(&r.members) {
                        out.line(&row.join(", "))?;
                    }
                }
                OutputFormat::Table => out.raw(table::render(&HEADERS, &rows(&r.members)).as_bytes())?,
                _ => out.doc(&model::members(r.header.as_ref(), &r.members))?,
            }
        }
        MemberCommand::Add { name, peer_urls, learner } => {
            let name = match name.as_slice() {
                [] => return Err(bad_args("member name not provided")),
                [one] => one.clone(),
                many => {
                    let mut message = String::from("too many arguments");
                    for arg in many.iter().filter(|a| a.to_lowercase().starts_with("http")) {
                        message.push_str(&format!(", did you mean --peer-urls={arg}"));
                    }
                    return Err(bad_args(message));
                }
            };
            if peer_urls.is_empty() {
                return Err(bad_args("member peer urls not provided"));
            }
            refuse_table(global.write_out)?;
            let urls: Vec<String> = peer_urls.split(',').map(str::to_string).collect();
            let conn = connect::connect(global).await?;
            let r = conn
                .call(conn.cluster().member_add(MemberAddRequest { peer_ur_ls: urls, is_learner: learner }))
                .await?;
            let new_id = r.member.as_ref().map_or(0, |m| m.id);
            if out.format != OutputFormat::Simple {
                out.doc(&model::member_add(r.header.as_ref(), r.member.as_ref(), &r.members))?;
            } else {
                out.line(&format!("Member {new_id:16x} added to cluster {:16x}", cluster_id(r.header.as_ref())))?;
                // The environment for starting the new member, as etcdctl prints it.
                let initial_cluster: Vec<String> = r
                    .members
                    .iter()
                    .flat_map(|m| {
                        let member_name = if m.id == new_id { name.clone() } else { m.name.clone() };
                        m.peer_ur_ls.iter().map(move |u| format!("{member_name}={u}"))
                    })
                    .collect();
                out.line("")?;
                out.line(&format!("ETCD_NAME={}", quote(&name)))?;
                out.line(&format!("ETCD_INITIAL_CLUSTER={}", quote(&initial_cluster.join(","))))?;
                out.line(&format!("ETCD_INITIAL_ADVERTISE_PEER_URLS={}", quote(&peer_urls)))?;
                out.line("ETCD_INITIAL_CLUSTER_STATE=\"existing\"")?;
            }
        }
        MemberCommand::Remove { id } => {
            let id = member_id(id)?;
            refuse_table(global.write_out)?;
            let conn = connect::connect(global).await?;
            let r = conn.call(conn.cluster().member_remove(MemberRemoveRequest { id })).await?;
            changed(&mut out, "removed from", id, r.header.as_ref(), &r.members)?;
        }
        MemberCommand::Update { id, peer_urls } => {
            let id = member_id(id)?;
            if peer_urls.is_empty() {
                return Err(bad_args("member peer urls not provided"));
            }
            refuse_table(global.write_out)?;
            let urls = peer_urls.split(',').map(str::to_string).collect();
            let conn = connect::connect(global).await?;
            let r = conn.call(conn.cluster().member_update(MemberUpdateRequest { id, peer_ur_ls: urls })).await?;
            changed(&mut out, "updated in", id, r.header.as_ref(), &r.members)?;
        }
        MemberCommand::Promote { id } => {
            let id = member_id(id)?;
            refuse_table(global.write_out)?;
            let conn = connect::connect(global).await?;
            let r = conn.call(conn.cluster().member_promote(MemberPromoteRequest { id })).await?;
            changed(&mut out, "promoted in", id, r.header.as_ref(), &r.members)?;
        }
    }
    out.flush()?;
    Ok(())
}

const HEADERS: [&str; 6] = ["ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"];

/// etcdctl's member rows; a member that has not published its name yet is "unstarted".
fn rows(members: &[Member]) -> Vec<Vec<String>> {
    members
        .iter()
        .map(|m| {
            vec![
                format!("{:x}", m.id),
                if m.name.is_empty() { "unstarted" } else { "started" }.to_string(),
                m.name.clone(),
                m.peer_ur_ls.join(","),
                m.client_ur_ls.join(","),
                m.is_learner.to_string(),
            ]
        })
        .collect()
}

fn changed(
    out: &mut Output,
    what: &str,
    id: u64,
    header: Option<&ResponseHeader>,
    members: &[Member],
) -> std::io::Result<()> {
    match out.format {
        OutputFormat::Simple => out.line(&format!("Member {id:16x} {what} cluster {:16x}", cluster_id(header))),
        _ => out.doc(&model::members(header, members)),
    }
}

fn cluster_id(header: Option<&ResponseHeader>) -> u64 {
    header.map_or(0, |h| h.cluster_id)
}

fn member_id(text: Option<String>) -> anyhow::Result<u64> {
    let text = text.ok_or_else(|| bad_args("member ID is not provided"))?;
    u64::from_str_radix(&text, 16).map_err(|e| {
        bad_args(format!("bad member ID arg ({}), expecting ID in Hex", strconv_error("ParseUint", &text, &e)))
    })
}
