//! `capstan ctl` side by side with the real etcdctl 3.4: the same arguments
//! against the same member of a three-member capstan cluster, and the same
//! stdout, stderr and exit code. Reads are compared exactly; writes after
//! the same setup, with revisions (which advance between the two runs)
//! normalised. Plus what etcdctl does not have: YAML output and paged reads.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use capstan_tests::ctl::{Client, Output};
use capstan_tests::store_cluster::Cluster;
use capstan_tests::{free_port, have};
use regex::Regex;

const FORMATS: [&str; 3] = ["simple", "json", "table"];

/// Splits on spaces; `''` stands for an empty argument.
fn split(args: &str) -> Vec<&str> {
    args.split(' ').map(|a| if a == "''" { "" } else { a }).collect()
}

/// etcdctl logs its client's retries as JSON lines on stderr; they are not
/// part of what the command prints.
fn without_logs(stderr: &str) -> String {
    stderr.lines().filter(|l| !l.starts_with("{\"level\"")).map(|l| format!("{l}\n")).collect()
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
}

/// Runs `args` with etcdctl, then with capstan ctl.
fn both(ep: &str, args: &[&str], stdin: Option<&str>) -> (Output, Output) {
    (Client::Etcdctl.run(ep, args, stdin), Client::Ctl.run(ep, args, stdin))
}

/// Asserts both printed the same (after `normalize`) and exited alike.
fn assert_same(what: &str, etcdctl: &Output, ctl: &Output, normalize: &dyn Fn(&str) -> String) {
    let expected = (etcdctl.code, normalize(&etcdctl.stdout), normalize(&without_logs(&etcdctl.stderr)));
    let actual = (ctl.code, normalize(&ctl.stdout), normalize(&ctl.stderr));
    assert_eq!(actual, expected, "`{what}`: capstan ctl (left) differs from etcdctl (right)");
}

/// A read: the same output exactly.
fn same(ep: &str, args: &str, stdin: Option<&str>) -> Output {
    let argv = split(args);
    let (etcdctl, ctl) = both(ep, &argv, stdin);
    assert_same(args, &etcdctl, &ctl, &|s| s.to_string());
    ctl
}

/// A read in every etcdctl format.
fn same_in_every_format(ep: &str, args: &str) {
    for format in FORMATS {
        same(ep, &format!("{args} -w {format}"), None);
    }
}

/// A write, run by each client after the same `setup` (etcdctl commands):
/// the same output once revisions and versions are set aside.
fn same_write(ep: &str, setup: &[&str], args: &str, stdin: Option<&str>) {
    let revisions = regex(r#""(revision|create_revision|mod_revision|version)":\d+"#);
    let run = |client: Client| {
        for step in setup {
            Client::Etcdctl.run(ep, &split(step), None).expect_ok(step);
        }
        client.run(ep, &split(args), stdin)
    };
    let (etcdctl, ctl) = (run(Client::Etcdctl), run(Client::Ctl));
    assert_same(args, &etcdctl, &ctl, &|s| revisions.replace_all(s, "\"$1\":_").into_owned());
}

fn etcdctl(ep: &str, args: &str) -> String {
    Client::Etcdctl.run(ep, &split(args), None).expect_ok(args)
}

fn ctl(ep: &str, args: &str) -> Output {
    Client::Ctl.run(ep, &split(args), None)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn revision(ep: &str) -> i64 {
    json(&etcdctl(ep, "get x -w json"))["header"]["revision"].as_i64().unwrap_or_default()
}

#[test]
fn get_put_del_and_txn_print_what_etcdctl_prints() {
    if !have("etcdctl") {
        return;
    }
    let c = Cluster::start(3, &[]);
    let ep = c.members[0].endpoint();
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("foo", "bar"), ("foo/x", "ünïcode <&>"), ("a", "1")] {
        Client::Etcdctl.run(&ep, &["put", k, v], None).expect_ok("seed");
    }
    let old = revision(&ep) - 2;

    // --- reads, in every format (table is refused, as etcdctl refuses it)
    for args in [
        "get foo",
        "get missing",
        "get '' --prefix",
        "get foo --prefix",
        "get a --from-key",
        "get a c",
        "get a --from-key --keys-only",
        "get '' --prefix --limit=2",
        "get '' --prefix --sort-by=MODIFY --order=DESCEND",
        "get '' --prefix --sort-by=VALUE",
        "get '' --prefix --sort-by=CREATE --order=ASCEND",
        "get '' --prefix --sort-by=VERSION",
        "get '' --prefix --sort-by=KEY --order=DESCEND --limit=3",
        "get '' --prefix --consistency=s",
        "get '' --prefix --print-value-only",
        "get foo --hex",
        &format!("get a --rev={old}"),
    ] {
        same_in_every_format(&ep, args);
    }
    // --- flag errors: the same message and exit code
    for args in [
        "get",
        "get a --prefix --from-key",
        "get a b --prefix",
        "get a --order=UP",
        "get a --sort-by=SIZE",
        "get a --consistency=x",
        "put",
        "put k v --lease=zz",
        "del",
        "del a b --from-key",
    ] {
        same(&ep, args, None);
    }

    // --- writes after the same setup
    for format in ["simple", "json"] {
        let w = format!("-w {format}");
        same_write(&ep, &["put p old"], &format!("put p new --prev-kv {w}"), None);
        same_write(&ep, &["del p"], &format!("put p {w}"), Some("from stdin\n"));
        same_write(&ep, &["put p v"], &format!("put p --ignore-value --prev-kv {w}"), None);
        same_write(&ep, &["put d/1 x", "put d/2 y"], &format!("del d/ --prefix --prev-kv {w}"), None);
        same_write(&ep, &["put d/1 x", "put d/2 y"], &format!("del d/1 d/3 {w}"), None);
        same_write(&ep, &["put z/1 x", "put z/2 y"], &format!("del z/ --from-key --prev-kv {w}"), None);
        same_write(&ep, &[], &format!("del nothing {w}"), None);
    }
    same(&ep, "put p -w table", None);

    // --- txn: etcdctl's grammar from stdin, with and without prompts
    let read_only = "value(\"foo\") = \"bar\"\n\nget foo\nget a --prefix\n\nget b\n\n";
    let writes = "mod(\"a\") > \"0\"\nversion(\"a\") = \"2\"\ncreate(\"nope\") = \"0\"\n\nput t/1 \"two words\" --prev-kv\ndel b --prev-kv\nget t/ --prefix\n\nput never x\n\n";
    let failing = "value(\"foo\") != \"bar\"\n\nput never x\n\nget foo\nput t/2 y\n\n";
    for format in FORMATS {
        same(&ep, &format!("txn -w {format}"), Some(read_only));
        same(&ep, &format!("txn -i -w {format}"), Some(read_only));
        same_write(&ep, &["put b 2", "del t/ --prefix"], &format!("txn -w {format}"), Some(writes));
        same_write(&ep, &["del t/2"], &format!("txn -i -w {format}"), Some(failing));
    }
    // A malformed line ends the txn with exit 3 before anything is sent.
    let bad = Client::Ctl.run(&ep, &["txn"], Some("mod(k) > 0\n\n\n\n"));
    assert_eq!(bad.code, Some(3), "{bad:?}");
    assert!(bad.stderr.starts_with("Error: malformed comparison: mod(k) > 0"), "{bad:?}");
    assert_eq!(bad.stderr.lines().count(), 1, "{bad:?}");
}

#[test]
fn lease_commands_print_what_etcdctl_prints() {
    if !have("etcdctl") {
        return;
    }
    let c = Cluster::start(3, &[]);
    let ep = c.members[0].endpoint();
    let ids = regex(r"\b[0-9a-f]{16}\b");
    let json_ids = regex(r#""(ID|id)":\d+"#);
    let remaining = regex(r#"remaining\(\d+s\)|"ttl":\d+"#);
    let normalize = |s: &str| {
        let s = ids.replace_all(s, "<ID>");
        let s = json_ids.replace_all(&s, "\"$1\":_");
        remaining.replace_all(&s, "<REMAINING>").into_owned()
    };

    // --- grant: a new lease each time, so ids differ
    for format in ["simple", "json"] {
        let (e, c) = both(&ep, &["lease", "grant", "100", "-w", format], None);
        assert_same("lease grant", &e, &c, &normalize);
    }
    let lease = etcdctl(&ep, "lease grant 100").split(' ').nth(1).map(str::to_string).unwrap_or_default();
    etcdctl(&ep, &format!("put leased/1 v --lease={lease}"));
    etcdctl(&ep, &format!("put leased/2 v --lease={lease}"));

    // --- one lease, read by both (only the seconds left may tick)
    for format in FORMATS {
        for args in [format!("lease timetolive {lease}"), format!("lease timetolive {lease} --keys")] {
            let (e, c) = both(&ep, &split(&format!("{args} -w {format}")), None);
            assert_same(&args, &e, &c, &|s| remaining.replace_all(s, "<REMAINING>").into_owned());
        }
        same(&ep, &format!("lease keep-alive {lease} --once -w {format}"), None);
        same(&ep, &format!("lease list -w {format}"), None);
    }

    // --- keep-alive until the lease is gone (2 s is the shortest TTL: renewals every second)
    let short = etcdctl(&ep, "lease grant 2").split(' ').nth(1).map(str::to_string).unwrap_or_default();
    let mut keeper = Client::Ctl.spawn(&ep, &["lease", "keep-alive", &short]);
    let lines = lines_of(&mut keeper);
    let first = next_line(&lines, "the first renewal");
    assert_eq!(first, format!("lease {short} keepalived with TTL(2)"));
    etcdctl(&ep, &format!("lease revoke {short}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let last = loop {
        let line = next_line(&lines, "the end of keep-alive");
        if !line.contains("keepalived") || Instant::now() > deadline {
            break line;
        }
    };
    assert_eq!(last, format!("lease {short} expired or revoked."));
    let status = keeper.wait().unwrap_or_else(|e| panic!("keep-alive: {e}"));
    assert!(status.success(), "keep-alive exits 0 once the lease is gone: {status}");

    // --- revoke: each revokes its own lease
    let other = etcdctl(&ep, "lease grant 100").split(' ').nth(1).map(str::to_string).unwrap_or_default();
    let e = Client::Etcdctl.run(&ep, &["lease", "revoke", &lease], None);
    let c = Client::Ctl.run(&ep, &["lease", "revoke", &other], None);
    assert_same("lease revoke", &e, &c, &normalize);
    same(&ep, "get leased/ --prefix", None);
}

/// The member id (hex) of each member, by index.
fn member_ids(c: &Cluster) -> Vec<String> {
    (0..c.members.len())
        .map(|i| {
            let status = json(&etcdctl(&c.members[i].endpoint(), "endpoint status -w json"));
            format!("{:x}", status[0]["Status"]["header"]["member_id"].as_u64().unwrap_or_default())
        })
        .collect()
}

#[test]
fn cluster_and_maintenance_commands_print_what_etcdctl_prints() {
    if !have("etcdctl") {
        return;
    }
    let mut c = Cluster::start(3, &[]);
    let ep = c.members[0].endpoint();
    let all = c.endpoints();
    etcdctl(&ep, "put k v");
    // Each member publishes its client URLs through Raft after it starts;
    // until all have, member lists taken a moment apart differ.
    capstan_tests::wait_for(Duration::from_secs(10), "every member to publish its client URLs", || {
        let list = etcdctl(&ep, "member list");
        list.lines().all(|l| !l.contains(", , ")).then_some(())
    });
    // Right after the start members still write their first entries; the
    // comparisons below want raft indexes that stay put.
    let mut last = String::new();
    capstan_tests::wait_for(Duration::from_secs(10), "raft indexes to settle", || {
        let now = etcdctl(&all, "endpoint status");
        let settled = now == last;
        last = now;
        settled.then_some(())
    });

    // --- member list, endpoint status and hashkv: exact, every format
    for format in FORMATS {
        same(&ep, &format!("member list -w {format}"), None);
        same(&all, &format!("endpoint status -w {format}"), None);
        same(&ep, &format!("endpoint status --cluster -w {format}"), None);
        same(&all, &format!("endpoint hashkv -w {format}"), None);
        same(&ep, &format!("endpoint hashkv --cluster --rev=2 -w {format}"), None);
    }
    // --- health: etcdctl lists endpoints as their checks finish, with
    // durations (which also set the width of a table's column)
    let took = regex(r"[0-9]+(\.[0-9]+)?(ns|µs|ms|s)\b");
    let runs = regex(r" +|-+");
    let sorted = |s: &str| {
        let s = took.replace_all(s, "<TOOK>");
        let mut lines: Vec<String> = if s.starts_with('[') {
            json(&s).as_array().cloned().unwrap_or_default().iter().map(|v| v.to_string()).collect()
        } else {
            s.lines().map(|l| runs.replace_all(l, |c: &regex::Captures| c[0][..1].to_string()).into_owned()).collect()
        };
        lines.sort();
        lines.join("\n")
    };
    for format in FORMATS {
        for args in [format!("endpoint health -w {format}"), format!("endpoint health --cluster -w {format}")] {
            let (e, c) = both(if args.contains("--cluster") { &ep } else { &all }, &split(&args), None);
            assert_same(&args, &e, &c, &sorted);
        }
    }

    // --- alarms: none, then one raised through the API, then disarmed by each
    for format in FORMATS {
        same(&ep, &format!("alarm list -w {format}"), None);
    }
    let ids = member_ids(&c);
    let raise = || {
        let id = u64::from_str_radix(&ids[1], 16).unwrap_or_default();
        raise_nospace_alarm(&c.members[0].client_url(), id);
        // The alarm list is read from the member's applied state, which may
        // trail the write's acknowledgement.
        capstan_tests::wait_for(Duration::from_secs(10), "the alarm on the member", || {
            etcdctl(&ep, "alarm list").contains("NOSPACE").then_some(())
        });
    };
    raise();
    for format in FORMATS {
        same(&ep, &format!("alarm list -w {format}"), None);
    }
    for format in ["simple", "json"] {
        raise();
        let e = Client::Etcdctl.run(&ep, &["alarm", "disarm", "-w", format], None);
        raise();
        let c = Client::Ctl.run(&ep, &["alarm", "disarm", "-w", format], None);
        assert_same("alarm disarm", &e, &c, &|s| s.to_string());
    }
    same(&ep, "alarm list", None);
    same(&ep, "alarm disarm -w json", None);

    // --- defrag prints the same lines whatever the format
    same(&all, "defrag", None);
    same(&ep, "defrag --cluster -w json", None);

    // --- membership: a learner that never starts, added, updated, promoted and removed by each
    let peer = format!("http://127.0.0.1:{}", free_port());
    let moved = format!("http://127.0.0.1:{}", free_port());
    // A new member's id is random (printed space-padded to 16 columns), and
    // members are listed in id order.
    let new_ids = regex(r" +[0-9a-f]{12,16}\b");
    let member_text = |s: &str| {
        let s = new_ids.replace_all(s, " <ID>").into_owned();
        let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
        for line in &mut lines {
            if let Some(list) = line.strip_prefix("ETCD_INITIAL_CLUSTER=\"").and_then(|l| l.strip_suffix('"')) {
                let mut items: Vec<&str> = list.split(',').collect();
                items.sort_unstable();
                *line = format!("ETCD_INITIAL_CLUSTER=\"{}\"", items.join(","));
            }
        }
        lines.join("\n")
    };
    let member_json = |s: &str| {
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(s) else { return s.to_string() };
        if let Some(members) = v["members"].as_array_mut() {
            members.iter_mut().for_each(|m| m["ID"] = serde_json::Value::Null);
            members.sort_by_key(|m| m.to_string());
        }
        if v["member"].is_object() {
            v["member"]["ID"] = serde_json::Value::Null;
        }
        v.to_string()
    };
    for (format, normalize) in [("simple", &member_text as &dyn Fn(&str) -> String), ("json", &member_json)] {
        let add = ["member", "add", "m4", "--learner", "--peer-urls", peer.as_str(), "-w", format];
        let e = Client::Etcdctl.run(&ep, &add, None);
        let added = learner_id(&ep);
        let e_remove = Client::Etcdctl.run(&ep, &["member", "remove", &added, "-w", format], None);
        let c = Client::Ctl.run(&ep, &add, None);
        assert_same("member add", &e, &c, normalize);
        let added = learner_id(&ep);
        let update = format!("member update {added} --peer-urls={moved} -w {format}");
        let e = Client::Etcdctl.run(&ep, &split(&update), None);
        etcdctl(&ep, &format!("member update {added} --peer-urls={peer}"));
        let c = Client::Ctl.run(&ep, &split(&update), None);
        assert_same("member update", &e, &c, &|s| s.to_string());
        etcdctl(&ep, &format!("member update {added} --peer-urls={peer}"));
        same(&ep, &format!("member promote {} -w {format}", ids[1]), None);
        let c_remove = Client::Ctl.run(&ep, &["member", "remove", &added, "-w", format], None);
        assert_same("member remove", &e_remove, &c_remove, normalize);
    }
    same(&ep, "member remove 1234", None);
    same(&ep, "member add m5", None);
    // A learner that runs and catches up is promoted, then removed.
    let j = c.add_spec();
    let learner_peer = c.members[j].peer_url();
    ctl(&ep, &format!("member add {} --learner --peer-urls={learner_peer}", c.members[j].name)).expect_ok("add");
    c.start_joining(j);
    let learner_ep = c.members[j].endpoint();
    capstan_tests::wait_for(Duration::from_secs(30), "the learner to catch up", || {
        let out = Client::Etcdctl.run(&learner_ep, &["get", "k", "--consistency=s", "--print-value-only"], None);
        (out.stdout == "v\n").then_some(())
    });
    let id = learner_id(&ep);
    let cluster = json(&etcdctl(&ep, "member list -w json"))["header"]["cluster_id"].as_u64().unwrap_or_default();
    let promoted = ctl(&ep, &format!("member promote {id}")).expect_ok("promote");
    assert_eq!(promoted, format!("Member {:>16} promoted in cluster {cluster:16x}\n", id));
    let removed = ctl(&ep, &format!("member remove {id}")).expect_ok("remove");
    assert_eq!(removed, format!("Member {:>16} removed from cluster {cluster:16x}\n", id));
    c.kill(j);

    // --- move-leader: last, as it starts a new term
    let leader = c.wait_leader();
    let follower = (leader + 1) % 3;
    let e = Client::Etcdctl.run(&all, &["move-leader", &ids[follower]], None);
    assert_eq!(e.stdout, format!("Leadership transferred from {} to {}\n", ids[leader], ids[follower]), "{e:?}");
    capstan_tests::wait_for(Duration::from_secs(10), "the new leader", || (c.leader() == Some(follower)).then_some(()));
    let ours = Client::Ctl.run(&all, &["move-leader", &ids[leader]], None);
    assert_eq!(ours.stdout, format!("Leadership transferred from {} to {}\n", ids[follower], ids[leader]), "{ours:?}");
    assert_eq!(ours.code, Some(0), "{ours:?}");
    capstan_tests::wait_for(Duration::from_secs(10), "the old leader back", || {
        (c.leader() == Some(leader)).then_some(())
    });
    same(&all, "move-leader ffff", None);
    same(&c.members[follower].endpoint(), &format!("move-leader {}", ids[leader]), None);
}

/// The id (hex) of the one learner in the member list.
fn learner_id(ep: &str) -> String {
    let list = json(&etcdctl(ep, "member list -w json"));
    let id = list["members"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["isLearner"].as_bool() == Some(true)))
        .and_then(|m| m["ID"].as_u64())
        .unwrap_or_else(|| panic!("no learner in {list}"));
    format!("{id:x}")
}

/// Raises a NOSPACE alarm for `member` (etcdctl cannot raise one).
fn raise_nospace_alarm(url: &str, member: u64) {
    use capstan_proto::etcdserverpb::alarm_request::AlarmAction;
    use capstan_proto::etcdserverpb::maintenance_client::MaintenanceClient;
    use capstan_proto::etcdserverpb::{AlarmRequest, AlarmType};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        let mut client = MaintenanceClient::connect(url.to_string()).await.unwrap_or_else(|e| panic!("connect: {e}"));
        let request =
            AlarmRequest { action: AlarmAction::Activate as i32, member_id: member, alarm: AlarmType::Nospace as i32 };
        client.alarm(request).await.unwrap_or_else(|e| panic!("alarm: {e}"));
    });
}

/// The lines a child prints, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("stdout is piped"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_line(lines: &mpsc::Receiver<String>, what: &str) -> String {
    lines.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("no line within 10 s: {what}"))
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn watch_prints_events_as_etcdctl_does() {
    if !have("etcdctl") {
        return;
    }
    let c = Cluster::start(3, &[]);
    let ep = c.members[0].endpoint();
    let start = (revision(&ep) + 1).to_string();
    let mut watchers = Vec::new();
    for format in ["simple", "json"] {
        let args = ["watch", "w/", "--prefix", "--prev-kv", "--rev", start.as_str(), "-w", format];
        for client in [Client::Etcdctl, Client::Ctl] {
            let mut child = client.spawn(&ep, &args);
            let lines = lines_of(&mut child);
            watchers.push((client, format, child, lines));
        }
    }
    // The first event is replayed from --rev; once every watcher has it, all are live.
    etcdctl(&ep, "put w/0 start");
    let mut seen: Vec<Vec<String>> = watchers
        .iter()
        .map(|(_, format, _, lines)| {
            let n = if *format == "json" { 1 } else { 3 };
            (0..n).map(|_| next_line(lines, "the first event")).collect()
        })
        .collect();
    etcdctl(&ep, "put w/1 a");
    etcdctl(&ep, "put w/1 b");
    etcdctl(&ep, "del w/1");
    etcdctl(&ep, "put other x");
    Client::Etcdctl.run(&ep, &["txn"], Some("\nput w/2 x\nput w/3 y\n\n\n")).expect_ok("txn");
    for ((_, format, _, lines), seen) in watchers.iter().zip(&mut seen) {
        // simple: PUT k v, PUT prev k v, DELETE prev k (empty value), PUT k v twice; json: a line per revision.
        let n = if *format == "json" { 4 } else { 3 + 5 + 5 + 6 };
        seen.extend((0..n).map(|_| next_line(lines, "the events")));
    }
    for pair in seen.chunks(2) {
        assert_eq!(pair[1], pair[0], "capstan ctl watch (left) differs from etcdctl watch (right)");
    }
    assert_eq!(seen[0][..6], ["PUT", "w/0", "start", "PUT", "w/1", "a"]);
    assert!(seen[2][1].contains(r#""Events":[{"kv":{"key":"dy8x""#), "{}", seen[2][1]);
    for (_, _, child, _) in watchers {
        stop(child);
    }

    // --- a watch whose reader goes away ends on its own, even with no events
    let mut idle = Client::Ctl.spawn(&ep, &["watch", "quiet"]);
    drop(idle.stdout.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = idle.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            break status;
        }
        assert!(Instant::now() < deadline, "watch went on after its stdout closed");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");

    same(&ep, "watch -w table", None);
}

#[test]
fn large_ranges_page_and_json_values_print_as_yaml() {
    if !have("etcdctl") {
        return;
    }
    let c = Cluster::start(3, &[]);
    let ep = c.members[0].endpoint();
    // 2,600 keys, 100 puts per txn.
    for batch in 0..26 {
        let puts: String =
            (0..100).map(|i| format!("put /p/{:04} value-{}\n", batch * 100 + i, batch * 100 + i)).collect();
        Client::Ctl.run(&ep, &["txn"], Some(&format!("\n{puts}\n\n"))).expect_ok("txn of puts");
    }
    etcdctl(&ep, "put /q last");
    for args in [
        "get /p/ --prefix",
        "get /p/ --prefix --keys-only",
        "get /p/ --prefix -w json",
        "get /p/ --prefix --keys-only -w json",
        "get /p/ --from-key --print-value-only",
        "get /p/1 /p/2 -w json",
        "get /p/ --prefix --limit=1500 -w json",
        "get /none/ --prefix -w json",
    ] {
        same(&ep, args, None);
    }
    let count = ctl(&ep, "get /p/ --prefix --count-only").expect_ok("count");
    assert_eq!(count, "2600\n");

    // --- YAML: JSON values nested, keys and other values readable
    let pod = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"default","labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27","ports":[{"containerPort":80}]}]},"status":{}}"#;
    etcdctl(&ep, "del /p/ --prefix");
    Client::Etcdctl.run(&ep, &["put", "/registry/pods/default/web", pod], None).expect_ok("put pod");
    Client::Etcdctl.run(&ep, &["put", "/registry/note", "yes: no"], None).expect_ok("put note");
    let header = json(&etcdctl(&ep, "get /registry/pods/default/web -w json"))["header"].clone();
    let kv = json(&etcdctl(&ep, "get /registry/pods/default/web -w json"))["kvs"][0].clone();
    let yaml = ctl(&ep, "get /registry/ --prefix -w yaml").expect_ok("yaml");
    let expected = format!(
        "\
header:
  cluster_id: {}
  member_id: {}
  revision: {}
  raft_term: {}
kvs:
- key: /registry/note
  create_revision: {rev}
  mod_revision: {rev}
  version: 1
  value: \"yes: no\"
- key: /registry/pods/default/web
  create_revision: {pod_rev}
  mod_revision: {pod_rev}
  version: 1
  value:
    kind: Pod
    apiVersion: v1
    metadata:
      name: web
      namespace: default
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
    status: {{}}
count: 2
",
        header["cluster_id"],
        header["member_id"],
        header["revision"],
        header["raft_term"],
        rev = header["revision"],
        pod_rev = kv["mod_revision"],
    );
    assert_eq!(yaml, expected);
}

#[test]
fn errors_are_one_line_with_etcdctls_exit_codes() {
    if !have("etcdctl") {
        return;
    }
    // --- an endpoint with nothing behind it: named, and exit 2
    let nobody = format!("127.0.0.1:{}", free_port());
    let out = Client::Ctl.run(&nobody, &["get", "foo"], None);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stderr, format!("Error: could not connect to {nobody}: connection refused\n"));
    let out = Client::Ctl.run(&format!("http://{nobody},{nobody}"), &["put", "k", "v"], None);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr.starts_with("Error: could not connect to any endpoint: could not connect to http://"),
        "{out:?}"
    );
    let out = Client::Ctl.run(&nobody, &["get", "foo", "--bogus"], None);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("--bogus"), "{out:?}");

    let c = Cluster::start(3, &[]);
    let ep = c.members[0].endpoint();
    for v in ["1", "2", "3"] {
        etcdctl(&ep, &format!("put k {v}"));
    }
    // --- a compacted revision: reads, compaction and watch fail as etcdctl's do
    let rev = revision(&ep);
    assert_eq!(
        ctl(&ep, &format!("compaction {rev} --physical")).expect_ok("compaction"),
        format!("compacted revision {rev}\n")
    );
    for args in ["get k --rev=2", &format!("compaction {rev}"), "compaction 1", "compaction x", "watch k --rev=2"] {
        let out = same(&ep, args, None);
        assert_ne!(out.code, Some(0), "{args}: {out:?}");
    }
    // --- unknown leases
    for args in
        ["put k v --lease=1234", "lease revoke 1234", "lease keep-alive 1234 --once", "lease timetolive 1234 -w json"]
    {
        same(&ep, args, None);
    }
    // --- argument errors
    for args in [
        "lease grant",
        "lease grant x",
        "member remove zz",
        "compaction",
        "watch",
        "watch a b --prefix",
        "move-leader zz",
    ] {
        same(&ep, args, None);
    }
}
