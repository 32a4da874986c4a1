/**
 * Which kind of checkpoint a file is, from its top-level keys and its state dict's layout: solo-learn's
 * Lightning `.ckpt`, a torchvision `.pth` (a flat ResNet body with its fc), the project's own file (a
 * `torch_ssl_version` entry), or any other state dict.
 */
import { dictGet, type PyValue } from './pyvalue.js';
import type { StateDictLayout } from './state-dict.js';

export type CheckpointFormat = 'solo-learn-lightning' | 'torchvision' | 'state-dict' | 'torch-ssl';

/** The top-level keys one of which, beside `state_dict`, makes a dict a Lightning checkpoint. */
const LIGHTNING_KEYS = ['pytorch-lightning_version', 'epoch', 'global_step', 'optimizer_states'];

/** The format of a checkpoint whose root is `root` and whose state dict splits as `layout`. */
export function formatOf(root: PyValue, { modules, prefixed }: Pick<StateDictLayout, 'modules' | 'prefixed'>): CheckpointFormat {
  if (typeof dictGet(root, 'torch_ssl_version') === 'string') return 'torch-ssl';
  const isLightning = dictGet(root, 'state_dict') !== undefined && LIGHTNING_KEYS.some((k) => dictGet(root, k) !== undefined);
  if (isLightning && prefixed) return 'solo-learn-lightning';
  const hasTorchvisionBody = !prefixed && modules.backbone.size > 0;
  return hasTorchvisionBody && modules.classifier.size > 0 ? 'torchvision' : 'state-dict';
}
