import type { NativeEvent, Parsed } from '../event';

/** The wire formats an audit event can arrive in. */
export type EventFormat = 'native' | 'fhir-r4' | 'fhir-stu3' | 'fhir-dstu2' | 'atna';

/** One event decoded from a foreign format, or the problem that stopped it. */
export interface DecodedEvent {
  parsed: Parsed<NativeEvent>;
  format: EventFormat;
  /** Position in the enclosing Bundle, when the event came from one. */
  entry?: number;
}
