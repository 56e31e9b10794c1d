import { parseNativeEvent } from './event';
import { fromFhir, isFhirResource } from './formats/fhir';
import type { DecodedEvent } from './formats/types';
import { fromXml } from './formats/xml';

export type { DecodedEvent };

/**
 * One JSON document as a producer sends it: an array of native events, one native event,
 * one FHIR AuditEvent, or a FHIR Bundle of AuditEvents (an array may mix native and FHIR).
 */
export function decodeDocument(document: unknown): DecodedEvent[] {
  if (Array.isArray(document)) {
    return document.flatMap((element, index) =>
      decodeOne(element).map((decoded) => ({ ...decoded, entry: index })),
    );
  }
  return decodeOne(document);
}

function decodeOne(value: unknown): DecodedEvent[] {
  if (isFhirResource(value)) return fromFhir(value);
  return [{ parsed: parseNativeEvent(value), format: 'native' }];
}

/** Text from a file, a queue message or a log line: JSON, NDJSON, or XML (FHIR or ATNA). */
export function decodeText(text: string): DecodedEvent[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('<')) return fromXml(trimmed);
  try {
    return decodeDocument(JSON.parse(trimmed));
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
  }
  const lines = trimmed.split('\n').filter((line) => line.trim().length > 0);
  if (lines.length > 1) return lines.flatMap((line) => decodeLine(line));
  return [invalidJson()];
}

function decodeLine(line: string): DecodedEvent[] {
  try {
    return decodeDocument(JSON.parse(line));
  } catch (error) {
    if (error instanceof SyntaxError) return [invalidJson()];
    throw error;
  }
}

function invalidJson(): DecodedEvent {
  return {
    parsed: { ok: false, problem: { field: '(record)', reason: 'is not valid JSON or XML' } },
    format: 'native',
  };
}
