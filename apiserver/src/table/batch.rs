//! batch/v1 jobs and cron jobs.

use std::time::SystemTime;

use serde_json::Value;

use super::{
    AGE, CONTAINERS, Column, IMAGES, NAME, age, containers_and_images, format_selector, human_between, int_of, integer,
    len_of, list_of, name, since, str_of, text, timestamp, wide,
};

pub(super) static JOB_COLUMNS: [Column; 8] = [
    NAME,
    text("Status", "Status of the job."),
    text("Completions", "The number of pods which reached phase Succeeded."),
    text("Duration", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "A label query over pods that should match the pod count."),
];

pub(super) fn job_cells(job: &Value, now: SystemTime) -> Vec<Value> {
    let spec = &job["spec"];
    let status = &job["status"];
    let succeeded = int_of(&status["succeeded"]);
    let completions = match (spec["completions"].as_i64(), spec["parallelism"].as_i64().unwrap_or(0)) {
        (Some(completions), _) => format!("{succeeded}/{completions}"),
        (None, parallelism) if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
        (None, _) => format!("{succeeded}/1"),
    };
    let duration = match (timestamp(&status["startTime"]), timestamp(&status["completionTime"])) {
        (None, _) => String::new(),
        (Some(start), None) => human_between(start, now),
        (Some(start), Some(end)) => human_between(start, end),
    };
    // The first condition of a type decides, as printers.go `hasJobCondition` reads them.
    let conditions = list_of(&status["conditions"]);
    let has = |kind: &str| conditions.iter().find(|c| c["type"] == kind).is_some_and(|c| c["status"] == "True");
    let state = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if !job["metadata"]["deletionTimestamp"].is_null() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let [containers, images] = containers_and_images(&spec["template"]);
    vec![
        name(job),
        state.into(),
        completions.into(),
        duration.into(),
        age(job, now),
        containers,
        images,
        format_selector(&spec["selector"]).into(),
    ]
}

pub(super) static CRONJOB_COLUMNS: [Column; 10] = [
    NAME,
    text("Schedule", "The schedule in Cron format."),
    text("Timezone", "The time zone name for the given schedule."),
    Column { kind: "boolean", ..text("Suspend", "This flag tells the controller to suspend subsequent executions.") },
    integer("Active", "A list of pointers to currently running jobs."),
    text("Last Schedule", "Information when was the last time the job was successfully scheduled."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "A label query over pods that should match the pod count."),
];

pub(super) fn cronjob_cells(cronjob: &Value, now: SystemTime) -> Vec<Value> {
    let spec = &cronjob["spec"];
    let status = &cronjob["status"];
    let suspend = match spec["suspend"] {
        // batch/v1 defaulting sets `suspend: false` when omitted.
        Value::Bool(true) => "True",
        _ => "False",
    };
    let last_schedule = match status["lastScheduleTime"] {
        Value::Null => "<none>".into(),
        ref t => since(t, now),
    };
    let time_zone = spec["timeZone"].as_str().unwrap_or("<none>");
    let job_spec = &spec["jobTemplate"]["spec"];
    let [containers, images] = containers_and_images(&job_spec["template"]);
    vec![
        name(cronjob),
        str_of(&spec["schedule"]).into(),
        time_zone.into(),
        suspend.into(),
        len_of(&status["active"]).into(),
        last_schedule.into(),
        age(cronjob, now),
        containers,
        images,
        format_selector(&job_spec["selector"]).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::at;
    use super::*;
    use serde_json::json;

    #[test]
    fn finished_and_running_jobs() {
        let now = at("2024-05-01T12:00:00Z");
        let job = json!({
            "metadata": {"name": "pi", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"completions": 1, "parallelism": 1,
                     "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "5f1c"}},
                     "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}}},
            "status": {"startTime": "2024-05-01T11:00:00Z", "completionTime": "2024-05-01T11:02:05Z", "succeeded": 1,
                       "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                      {"type": "Complete", "status": "True"}]}
        });
        assert_eq!(
            job_cells(&job, now),
            [
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("2m5s"),
                json!("60m"),
                json!("pi"),
                json!("perl:5.34"),
                json!("batch.kubernetes.io/controller-uid=5f1c")
            ]
        );
        let running =
            json!({"spec": {"parallelism": 4}, "status": {"startTime": "2024-05-01T11:59:00Z", "succeeded": 2}});
        assert_eq!(job_cells(&running, now)[1..4], [json!("Running"), json!("2/1 of 4"), json!("60s")]);
        let suspended = json!({"status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(job_cells(&suspended, now)[1..4], [json!("Suspended"), json!("0/1"), json!("")]);
        let failed = json!({"metadata": {"deletionTimestamp": "2024-05-01T12:00:00Z"},
                            "status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(job_cells(&failed, now)[1], json!("Failed"));
    }

    #[test]
    fn cronjob() {
        let cronjob = json!({
            "metadata": {"name": "backup", "creationTimestamp": "2024-04-01T00:00:00Z"},
            "spec": {"schedule": "0 2 * * *", "timeZone": "Europe/Berlin", "suspend": false, "jobTemplate": {"spec": {
                "template": {"spec": {"containers": [{"name": "backup", "image": "restic:0.16"}]}}}}},
            "status": {"active": [{"kind": "Job", "name": "backup-28573"}], "lastScheduleTime": "2024-05-01T02:00:00Z"}
        });
        assert_eq!(
            cronjob_cells(&cronjob, at("2024-05-01T12:00:00Z")),
            [
                json!("backup"),
                json!("0 2 * * *"),
                json!("Europe/Berlin"),
                json!("False"),
                json!(1),
                json!("10h"),
                json!("30d"),
                json!("backup"),
                json!("restic:0.16"),
                json!("<none>")
            ]
        );
        let bare = cronjob_cells(&json!({"spec": {"suspend": true}}), at("2024-05-01T12:00:00Z"));
        assert_eq!(bare[2..6], [json!("<none>"), json!("True"), json!(0), json!("<none>")]);
    }
}
