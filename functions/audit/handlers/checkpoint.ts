import { auditLog } from '../context';

/** Every minute: sign a checkpoint for each stream whose head moved since its last one. */
export async function handler(): Promise<{ streams: number; signed: number }> {
  return auditLog().checkpointAll();
}
