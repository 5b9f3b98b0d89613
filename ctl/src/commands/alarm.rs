//! `alarm list|disarm`.

use capstan_proto::etcdserverpb::alarm_request::AlarmAction;
use capstan_proto::etcdserverpb::{AlarmMember, AlarmRequest, AlarmResponse, AlarmType};
use clap::Subcommand;

use crate::args::{GlobalArgs, OutputFormat};
use crate::connect;
use crate::output::{Output, model, refuse_table};

#[derive(Subcommand, Debug, Clone)]
pub enum AlarmCommand {
    /// Lists all alarms.
    List,
    /// Disarms all alarms.
    Disarm,
}

pub async fn run(global: &GlobalArgs, command: AlarmCommand) -> anyhow::Result<()> {
    refuse_table(global.write_out)?;
    let conn = connect::connect(global).await?;
    let get = AlarmRequest { action: AlarmAction::Get as i32, member_id: 0, alarm: AlarmType::None as i32 };
    let listed = conn.call(conn.maintenance().alarm(get)).await?;
    let response = match command {
        AlarmCommand::List => listed,
        AlarmCommand::Disarm => {
            // One deactivation per alarm; like clientv3, the combined answer has no header.
            let mut disarmed = AlarmResponse::default();
            for alarm in &listed.alarms {
                let request = AlarmRequest {
                    action: AlarmAction::Deactivate as i32,
                    member_id: alarm.member_id,
                    alarm: alarm.alarm,
                };
                disarmed.alarms.extend(conn.call(conn.maintenance().alarm(request)).await?.alarms);
            }
            disarmed
        }
    };
    let mut out = Output::new(global.write_out, global.hex);
    match out.format {
        OutputFormat::Simple => response.alarms.iter().try_for_each(|a| out.line(&text(a)))?,
        _ => out.doc(&model::alarms(&response))?,
    }
    out.flush()?;
    Ok(())
}

/// An alarm as Go's `%+v` prints it (protobuf compact text): non-zero
/// fields, each followed by a space.
fn text(alarm: &AlarmMember) -> String {
    let mut text = String::new();
    if alarm.member_id != 0 {
        text.push_str(&format!("memberID:{} ", alarm.member_id));
    }
    if alarm.alarm != 0 {
        let name =
            AlarmType::try_from(alarm.alarm).map_or_else(|_| alarm.alarm.to_string(), |t| t.as_str_name().to_string());
        text.push_str(&format!("alarm:{name} "));
    }
    text
}
