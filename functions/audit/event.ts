import { z } from 'zod';

/**
 * The native audit event: who, what, when, why, from where and with what outcome
 * (45 CFR 164.312(b) audit controls; the HIPAA audit checklist's content list).
 * Unknown keys are rejected so a producer's typo surfaces as an error, not a silent drop.
 */
export const ACTIONS = ['view', 'create', 'update', 'delete', 'export', 'execute'] as const;
export const OUTCOMES = ['success', 'failure'] as const;

/** ISO 8601 with an explicit zone: `Z` or `±hh:mm`. A local time without a zone is ambiguous. */
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/** Date.parse rolls 2026-02-30 over to March; a real date keeps its own day and month. */
function isRealDate(value: string): boolean {
  const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  const calendar = new Date(Date.UTC(year, month - 1, day));
  return (
    !Number.isNaN(Date.parse(value)) &&
    calendar.getUTCFullYear() === year &&
    calendar.getUTCMonth() === month - 1 &&
    calendar.getUTCDate() === day
  );
}

const text = (max: number) => z.string().min(1).max(max);

/**
 * Controls, zero-width characters and text-direction overrides: in an identifier they make two
 * spellings that look alike (`dr-chen` and `dr\u200b-chen`), which would split one person's or
 * one patient's accesses across two names.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\u2028\u2029]/u;

/** Who or what an event names: not blank, and spelt with visible characters only. */
const identifier = (max: number) =>
  text(max)
    .refine((value) => value.trim() !== '', 'must not be blank')
    .refine(
      (value) => !INVISIBLE.test(value),
      'must not contain control, zero-width or text-direction characters',
    );

export const nativeEventSchema = z.strictObject({
  id: identifier(256).optional(),
  userId: identifier(256),
  userRole: text(128).optional(),
  action: z.enum(ACTIONS),
  resourceType: text(128),
  resourceId: identifier(512),
  patientId: identifier(256).optional(),
  fieldsAccessed: z.array(text(256)).max(500).optional(),
  ipAddress: text(64).optional(),
  userAgent: text(1024).optional(),
  timestamp: z
    .string()
    .regex(ISO_WITH_ZONE, 'must be ISO 8601 with a zone, e.g. 2026-01-31T14:05:00-05:00')
    .refine(isRealDate, 'is not a real date and time'),
  sessionId: text(256).optional(),
  purposeOfUse: text(256).optional(),
  reason: text(4096).optional(),
  application: text(256).optional(),
  device: text(256).optional(),
  outcome: z.enum(OUTCOMES).optional(),
});

export type NativeEvent = z.infer<typeof nativeEventSchema>;
export type AuditAction = (typeof ACTIONS)[number];

/** A problem with one input record: which field, and what is wrong with it. */
export interface FieldProblem {
  field: string;
  reason: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: FieldProblem };

export function parseNativeEvent(input: unknown): Parsed<NativeEvent> {
  const result = nativeEventSchema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problem: firstProblem(result.error) };
}

function firstProblem(error: z.ZodError): FieldProblem {
  const issue = error.issues[0];
  if (!issue) return { field: '(event)', reason: 'is not a valid audit event' };
  if (issue.code === 'unrecognized_keys') {
    return { field: issue.keys[0] ?? '(event)', reason: 'is not a known key' };
  }
  const field = issue.path.length > 0 ? issue.path.join('.') : '(event)';
  const missing = issue.code === 'invalid_type' && issue.message.includes('undefined');
  return { field, reason: missing ? 'is required' : issue.message };
}
