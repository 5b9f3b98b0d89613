//! `move-leader ID`: finds the leader among the endpoints, then asks it to
//! hand leadership to member ID.

use capstan_proto::etcdserverpb::{MoveLeaderRequest, StatusRequest};
use clap::Args;

use crate::args::{GlobalArgs, OutputFormat};
use crate::connect;
use crate::error::bad_args;
use crate::output::go_fmt::strconv_error;
use crate::output::{Output, model, refuse_table};

#[derive(Args, Debug, Clone)]
pub struct MoveLeaderArgs {
    /// The member ID (hex) of the new leader.
    pub target: Option<String>,
}

pub async fn run(global: &GlobalArgs, args: MoveLeaderArgs) -> anyhow::Result<()> {
    let text = args.target.ok_or_else(|| bad_args("move-leader command needs 1 argument"))?;
    let target = u64::from_str_radix(&text, 16).map_err(|e| bad_args(strconv_error("ParseUint", &text, &e)))?;
    refuse_table(global.write_out)?;
    let endpoints = global.endpoint_list();
    let mut leader = None;
    for endpoint in &endpoints {
        let conn = connect::dial(endpoint, global).await?;
        let status = conn.call(conn.maintenance().status(StatusRequest {})).await?;
        if status.header.as_ref().is_some_and(|h| h.member_id == status.leader) {
            leader = Some((conn, status.leader));
            break;
        }
    }
    let Some((conn, leader_id)) = leader else {
        return Err(bad_args(format!("no leader endpoint given at [{}]", endpoints.join(" "))));
    };
    let response = conn.call(conn.maintenance().move_leader(MoveLeaderRequest { target_id: target })).await?;
    let mut out = Output::new(global.write_out, global.hex);
    match out.format {
        OutputFormat::Simple => out.line(&format!("Leadership transferred from {leader_id:x} to {target:x}"))?,
        _ => out.doc(&model::header_only(response.header.as_ref()))?,
    }
    out.flush()?;
    Ok(())
}
