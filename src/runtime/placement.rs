//! Placement as data: which core each worker is pinned to.

use core_affinity::CoreId;

/// The plan: worker `i` runs pinned to `cores[i]` (or unpinned when the mask is unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// One entry per worker.
    pub cores: Vec<Option<usize>>,
}

/// Plans `requested` workers (0 = one per CPU) over the process's affinity mask, in mask order,
/// wrapping around when more workers than cores are requested.
pub fn plan(requested: usize) -> Placement {
    let mask: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|core| core.id)
        .collect();
    plan_over(&mask, requested)
}

/// [`plan`] over an explicit mask (pure, for tests).
pub fn plan_over(mask: &[usize], requested: usize) -> Placement {
    if mask.is_empty() {
        return Placement {
            cores: vec![None; requested.max(1)],
        };
    }
    let count = if requested == 0 {
        mask.len()
    } else {
        requested
    };
    Placement {
        cores: (0..count)
            .map(|i| mask.get(i % mask.len()).copied())
            .collect(),
    }
}

/// Pins the calling thread; false when the OS refused.
pub fn pin_current_thread(core: usize) -> bool {
    core_affinity::set_for_current(CoreId { id: core })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_per_core_in_mask_order() {
        assert_eq!(plan_over(&[2, 3], 0).cores, vec![Some(2), Some(3)]);
        assert_eq!(plan_over(&[2, 3], 3).cores, vec![Some(2), Some(3), Some(2)]);
        assert_eq!(plan_over(&[], 0).cores, vec![None]);
        assert_eq!(plan_over(&[], 2).cores, vec![None, None]);
        assert!(!plan(0).cores.is_empty());
    }
}
