import type { FieldProblem, NativeEvent, Parsed } from '../event';
import type { EventFormat } from './types';

/** The formats decoded here; native events are validated where they arrive. */
export type SourceFormat = Exclude<EventFormat, 'native'>;
type FieldNames = Partial<Record<keyof NativeEvent, string>>;

/**
 * Where each native field comes from in each format, so a problem names the field the producer
 * actually sent. Only fields that differ from R4 are listed for the other formats.
 */
const R4: FieldNames = {
  id: 'id',
  userId: 'agent',
  userRole: 'agent.role',
  action: 'action',
  resourceType: 'entity',
  resourceId: 'entity',
  patientId: 'entity',
  fieldsAccessed: 'entity.detail',
  ipAddress: 'agent.network.address',
  device: 'agent.network.address',
  timestamp: 'recorded',
  sessionId: 'entity',
  purposeOfUse: 'purposeOfEvent',
  reason: 'purposeOfEvent.text',
  application: 'source.observer',
  outcome: 'outcome',
};

const STU3: FieldNames = { ...R4, userId: 'agent.userId', application: 'source.identifier' };

const DSTU2: FieldNames = {
  ...STU3,
  userId: 'participant.userId',
  userRole: 'participant.role',
  action: 'event.action',
  resourceType: 'object',
  resourceId: 'object',
  patientId: 'object',
  fieldsAccessed: 'object.detail',
  ipAddress: 'participant.network.address',
  device: 'participant.network.address',
  timestamp: 'event.dateTime',
  sessionId: 'object',
  purposeOfUse: 'event.purposeOfEvent',
  reason: 'event.outcomeDesc',
  outcome: 'event.outcome',
};

const OBJECT = 'ParticipantObjectIdentification';
const ATNA: FieldNames = {
  userId: 'ActiveParticipant.UserID',
  userRole: 'ActiveParticipant.RoleIDCode',
  action: 'EventIdentification.EventActionCode',
  resourceType: OBJECT,
  resourceId: OBJECT,
  patientId: OBJECT,
  fieldsAccessed: `${OBJECT}.ParticipantObjectDetail`,
  ipAddress: 'ActiveParticipant.NetworkAccessPointID',
  device: 'ActiveParticipant.NetworkAccessPointID',
  timestamp: 'EventIdentification.EventDateTime',
  purposeOfUse: 'EventIdentification.PurposeOfUse',
  reason: 'EventIdentification.EventOutcomeDescription',
  application: 'AuditSourceIdentification.AuditSourceID',
  outcome: 'EventIdentification.EventOutcomeIndicator',
};

const FIELD_NAMES: Record<SourceFormat, FieldNames> = {
  'fhir-r4': R4,
  'fhir-stu3': STU3,
  'fhir-dstu2': DSTU2,
  atna: ATNA,
};

/** The name, in `format`, of the field a native field is read from. */
export function sourceField(format: SourceFormat, nativeField: keyof NativeEvent): string {
  return FIELD_NAMES[format][nativeField] ?? nativeField;
}

/** A native validation problem, renamed to the field of the source format. */
export function renamed(problem: FieldProblem, format: SourceFormat): FieldProblem {
  const nativeField = problem.field.split('.')[0] as keyof NativeEvent;
  return { field: FIELD_NAMES[format][nativeField] ?? problem.field, reason: problem.reason };
}

export function failure(field: string, reason: string): Parsed<NativeEvent> {
  return { ok: false, problem: { field, reason } };
}
