//! The message of a failed attempt, worded as kube-scheduler 1.33's
//! `FitError`: reasons counted over nodes, "<count> <reason>" strings sorted
//! as strings, then the verdict of preemption (which capstan does not do).

use std::collections::BTreeMap;

/// Why no node fits a pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// How many nodes gave each reason; one node may give several.
    pub reasons: BTreeMap<String, usize>,
}

impl FitError {
    pub fn new<'a>(num_all_nodes: usize, rejections: impl IntoIterator<Item = &'a [String]>) -> FitError {
        let mut reasons = BTreeMap::new();
        for reason in rejections.into_iter().flatten() {
            *reasons.entry(reason.clone()).or_insert(0) += 1;
        }
        FitError { num_all_nodes, reasons }
    }

    pub fn message(&self) -> String {
        let n = self.num_all_nodes;
        let mut counted: Vec<String> = self.reasons.iter().map(|(reason, count)| format!("{count} {reason}")).collect();
        counted.sort();
        let mut message = format!("0/{n} nodes are available:");
        if !counted.is_empty() {
            message.push_str(&format!(" {}.", counted.join(", ")));
        }
        message.push_str(&format!(
            " preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling."
        ));
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(list: &[&[&str]]) -> Vec<Vec<String>> {
        list.iter().map(|r| r.iter().map(|s| s.to_string()).collect()).collect()
    }

    #[test]
    fn the_kube_scheduler_wording() {
        let rejections =
            reasons(&[&["node(s) were unschedulable"], &["Insufficient memory"], &["node(s) were unschedulable"]]);
        let error = FitError::new(3, rejections.iter().map(Vec::as_slice));
        assert_eq!(
            error.message(),
            "0/3 nodes are available: 1 Insufficient memory, 2 node(s) were unschedulable. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn one_node_counts_for_each_of_its_reasons() {
        let rejections = reasons(&[&["Insufficient cpu", "Insufficient memory"], &["Insufficient memory"]]);
        let error = FitError::new(2, rejections.iter().map(Vec::as_slice));
        assert_eq!(
            error.message(),
            "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory. \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn counts_sort_as_strings_like_go_sort_strings() {
        let mut rejections = reasons(&[&["node(s) didn't match Pod's node affinity/selector"] as &[&str]; 10]);
        rejections.extend(reasons(&[&["Insufficient cpu"], &["Insufficient cpu"]]));
        let error = FitError::new(12, rejections.iter().map(Vec::as_slice));
        assert_eq!(
            error.message(),
            "0/12 nodes are available: 10 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu. \
             preemption: 0/12 nodes are available: 12 Preemption is not helpful for scheduling."
        );
    }
}
