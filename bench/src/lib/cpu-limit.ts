import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A CPU budget a process is held to; `release()` moves it back out and removes the budget. */
export interface CpuLimit {
  release(): void;
}

const period = 100_000;

/**
 * Holds a process to `cores` of CPU time (0.5: half a core), as a container's CPU limit does, with a
 * Linux cgroup of its own (v2 `cpu.max`, or v1's `cpu.cfs_quota_us`). Needs a writable cgroup
 * hierarchy (root in a container); throws with the reason otherwise.
 */
export function limitCpu(pid: number, cores: number, name: string): CpuLimit {
  const quota = String(Math.round(cores * period));
  const v2 = '/sys/fs/cgroup/cgroup.controllers';
  const v1 = '/sys/fs/cgroup/cpu';
  let group: string;
  if (existsSync(v2)) {
    group = join('/sys/fs/cgroup', name);
    mkdirSync(group, { recursive: true });
    if (!existsSync(join(group, 'cpu.max'))) throw new Error('limiting a process to a share of CPU needs the cpu controller in /sys/fs/cgroup/cgroup.subtree_control');
    writeFileSync(join(group, 'cpu.max'), `${quota} ${period}`);
  } else if (existsSync(join(v1, 'cpu.cfs_quota_us'))) {
    group = join(v1, name);
    mkdirSync(group, { recursive: true });
    writeFileSync(join(group, 'cpu.cfs_period_us'), String(period));
    writeFileSync(join(group, 'cpu.cfs_quota_us'), quota);
  } else {
    throw new Error('limiting a process to a share of CPU needs a cgroup hierarchy with the cpu controller under /sys/fs/cgroup');
  }
  writeFileSync(join(group, 'cgroup.procs'), String(pid));
  return {
    release() {
      try {
        rmdirSync(group);
      } catch {
        // A process still in it (it is exiting): the kernel keeps the group until it is gone.
      }
    },
  };
}
