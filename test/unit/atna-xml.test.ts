import fs from 'node:fs';
import path from 'node:path';
import type { NativeEvent } from '../../functions/audit/event';
import { fromFhir } from '../../functions/audit/formats/fhir';
import type { DecodedEvent } from '../../functions/audit/formats/types';
import { fromXml } from '../../functions/audit/formats/xml';

const FIXTURES = path.join(__dirname, '../fixtures/fhir-auditevent');
const XML_FIXTURES = [
  ...fs.readdirSync(FIXTURES).filter((name) => name.endsWith('.xml')),
  ...fs.readdirSync(path.join(FIXTURES, 'atna')).map((name) => `atna/${name}`),
];

function fixture(name: string): string {
  return fs.readFileSync(path.join(FIXTURES, name), 'utf8');
}

/** The one event a document decodes to; fails the test with the problem when there is none. */
function only(decoded: DecodedEvent[]): NativeEvent {
  expect(decoded).toHaveLength(1);
  const parsed = decoded[0]?.parsed;
  if (!parsed?.ok) throw new Error(`expected a valid event, got ${JSON.stringify(parsed)}`);
  return parsed.value;
}

/** A DICOM AuditMessage in the RFC 3881 code/displayName form, for one physician's read. */
const AUDIT_MESSAGE = `<?xml version="1.0" encoding="UTF-8"?>
<AuditMessage>
  <EventIdentification EventActionCode="R" EventDateTime="2026-03-02T08:15:30Z"
      EventOutcomeIndicator="0">
    <EventID code="110110" codeSystemName="DCM" displayName="Patient Record"/>
    <PurposeOfUse code="TREAT" codeSystemName="2.16.840.1.113883.5.8" displayName="treatment"/>
  </EventIdentification>
  <ActiveParticipant UserID="jdoe" UserName="Jane Doe" UserIsRequestor="true"
      NetworkAccessPointID="192.0.2.7" NetworkAccessPointTypeCode="2">
    <RoleIDCode code="PHYS" codeSystemName="local" displayName="Physician"/>
  </ActiveParticipant>
  <AuditSourceIdentification AuditSourceID="ehr-1"/>
  <ParticipantObjectIdentification ParticipantObjectID="MRN-1001" ParticipantObjectTypeCode="1"
      ParticipantObjectTypeCodeRole="1">
    <ParticipantObjectIDTypeCode code="2" codeSystemName="RFC-3881" displayName="Patient Number"/>
  </ParticipantObjectIdentification>
</AuditMessage>`;

/** An R4 read of an Observation in FHIR XML, and the same event in FHIR JSON below. */
const AUDIT_EVENT_XML = `<AuditEvent xmlns="http://hl7.org/fhir">
  <id value="xml-read-1"/>
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">Read</div></text>
  <type>
    <system value="http://terminology.hl7.org/CodeSystem/audit-event-type"/>
    <code value="rest"/>
  </type>
  <subtype><system value="http://hl7.org/fhir/restful-interaction"/><code value="read"/></subtype>
  <action value="R"/>
  <recorded value="2026-03-02T08:15:30+01:00"/>
  <outcome value="0"/>
  <purposeOfEvent>
    <coding>
      <system value="http://terminology.hl7.org/CodeSystem/v3-ActReason"/>
      <code value="TREAT"/>
    </coding>
    <text value="Ward round"/>
  </purposeOfEvent>
  <agent>
    <role><text value="Charge nurse"/></role>
    <who><identifier><value value="nurse-ren&#233;"/></identifier></who>
    <requestor value="true"/>
    <network><address value="192.0.2.10"/><type value="2"/></network>
  </agent>
  <source><observer><display value="Ward Tablet App"/></observer></source>
  <entity>
    <what><reference value="Observation/bp-9"/></what>
    <detail><type value="valueQuantity"/><valueString value="accessed"/></detail>
  </entity>
  <entity>
    <what><reference value="Patient/p-31"/></what>
    <role>
      <system value="http://terminology.hl7.org/CodeSystem/object-role"/>
      <code value="1"/>
    </role>
  </entity>
</AuditEvent>`;

const AUDIT_EVENT_JSON = {
  resourceType: 'AuditEvent',
  id: 'xml-read-1',
  type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
  subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }],
  action: 'R',
  recorded: '2026-03-02T08:15:30+01:00',
  outcome: '0',
  purposeOfEvent: [
    {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }],
      text: 'Ward round',
    },
  ],
  agent: [
    {
      role: [{ text: 'Charge nurse' }],
      who: { identifier: { value: 'nurse-rené' } },
      requestor: true,
      network: { address: '192.0.2.10', type: '2' },
    },
  ],
  source: { observer: { display: 'Ward Tablet App' } },
  entity: [
    {
      what: { reference: 'Observation/bp-9' },
      detail: [{ type: 'valueQuantity', valueString: 'accessed' }],
    },
    {
      what: { reference: 'Patient/p-31' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1' },
    },
  ],
};

describe('fromXml on the published examples', () => {
  it.each(XML_FIXTURES)('decodes %s to a valid native event', (name) => {
    const decoded = fromXml(fixture(name));

    expect(decoded.map((item) => item.parsed.ok)).toEqual([true]);
  });

  it('maps an ITI-8 patient identity feed to a create on the patient', () => {
    const [decoded] = fromXml(fixture('atna/ipf-atna-iti8-patient-identity-feed.xml'));
    const patient = '7627199^^^HZLN&2.16.840.1.113883.3.37.4.1.1.2.411.1&ISO';

    expect(decoded?.format).toBe('atna');
    expect(decoded?.parsed).toEqual({
      ok: true,
      value: expect.objectContaining({
        userId: 'PKL|SAP-ISH',
        userRole: 'Source Role ID',
        action: 'create',
        resourceType: 'Patient',
        resourceId: patient,
        patientId: patient,
        ipAddress: '127.0.0.1',
        timestamp: '2020-03-19T12:24:34.434Z',
        application: 'MPI',
        outcome: 'success',
      }),
    });
  });

  it('maps an ITI-9 PIX query to an execute on the query, with the first patient', () => {
    const event = only(fromXml(fixture('atna/ipf-atna-iti9-pix-query.xml')));

    expect(event).toMatchObject({
      userId: 'MESA_DEPARTMENT|MESA_PIX_CLIENT',
      action: 'execute',
      resourceType: 'PIX Query',
      resourceId: '10501108',
      patientId: '27^^^MPI&2.16.840.1.113883.3.37.4.1.1.2.1.1&ISO^PI',
      timestamp: '2020-03-19T12:34:06.367Z',
    });
  });

  it('maps an application start to the application, started by the requesting launcher', () => {
    const event = only(fromXml(fixture('atna/ipf-atna-application-start.xml')));

    expect(event).toMatchObject({
      userId: 'WDF-LAP-1237$',
      userRole: 'Application Launcher',
      action: 'execute',
      resourceType: 'Application',
      resourceId: 'app-connect',
    });
  });

  it('reads FHIR XML through the JSON rules: requestor, purpose and details', () => {
    const [decoded] = fromXml(fixture('ch-atc-doc-read-emergency-access.xml'));

    expect(decoded?.format).toBe('fhir-r4');
    expect(decoded?.parsed).toEqual({
      ok: true,
      value: expect.objectContaining({
        userId: 'Regula Fischer',
        userRole: 'Assistant',
        action: 'export',
        patientId: '761337610469261945',
        purposeOfUse: 'urn:oid:2.16.756.5.30.1.127.3.10.5|EMER',
        timestamp: '2020-10-20T12:29:00Z',
        fieldsAccessed: ['Repository Unique Id', 'homeCommunityID', 'EprDocumentTypeCode', 'title'],
      }),
    });
  });
});

describe('fromXml on DICOM AuditMessages', () => {
  it('reads codes in the RFC 3881 code/displayName form', () => {
    const event = only(fromXml(AUDIT_MESSAGE));

    expect(event).toEqual({
      userId: 'jdoe',
      userRole: 'Physician',
      action: 'view',
      resourceType: 'Patient',
      resourceId: 'MRN-1001',
      patientId: 'MRN-1001',
      ipAddress: '192.0.2.7',
      timestamp: '2026-03-02T08:15:30Z',
      purposeOfUse: 'TREAT',
      application: 'ehr-1',
      outcome: 'success',
    });
  });

  it.each(['4', '8', '12'])('maps EventOutcomeIndicator %s to failure', (indicator) => {
    const xml = AUDIT_MESSAGE.replace(
      'EventOutcomeIndicator="0"',
      `EventOutcomeIndicator="${indicator}"`,
    );

    expect(only(fromXml(xml)).outcome).toBe('failure');
  });

  it('reports a missing EventDateTime by its ATNA name', () => {
    const xml = AUDIT_MESSAGE.replace('EventDateTime="2026-03-02T08:15:30Z"', '');

    expect(fromXml(xml)).toEqual([
      {
        parsed: {
          ok: false,
          problem: { field: 'EventIdentification.EventDateTime', reason: 'is required' },
        },
        format: 'atna',
      },
    ]);
  });

  it('refuses an EventDateTime without a zone rather than guessing one', () => {
    const xml = AUDIT_MESSAGE.replace('2026-03-02T08:15:30Z', '2026-03-02T08:15:30');

    const [decoded] = fromXml(xml);

    expect(decoded?.parsed).toMatchObject({
      ok: false,
      problem: { field: 'EventIdentification.EventDateTime' },
    });
  });
});

describe('fromXml on FHIR XML', () => {
  it('decodes the XML form of an AuditEvent to the same event as its JSON form', () => {
    const fromJson = only(fromFhir(AUDIT_EVENT_JSON));

    const event = only(fromXml(`<?xml version="1.0" encoding="UTF-8"?>\n${AUDIT_EVENT_XML}`));

    expect(event).toEqual(fromJson);
    expect(event).toMatchObject({
      userId: 'nurse-rené',
      userRole: 'Charge nurse',
      resourceType: 'Observation',
      patientId: 'p-31',
      fieldsAccessed: ['valueQuantity'],
      reason: 'Ward round',
    });
  });

  it('yields one event per Bundle entry and reports the entry that is not an AuditEvent', () => {
    const auditEvent = AUDIT_EVENT_XML.replace(' xmlns="http://hl7.org/fhir"', '');
    const another = auditEvent.replace('Observation/bp-9', 'Observation/bp-10');
    const xml = `<Bundle xmlns="http://hl7.org/fhir">
      <type value="collection"/>
      <entry><resource>${auditEvent}</resource></entry>
      <entry><resource><Patient><id value="p-31"/></Patient></resource></entry>
      <entry><resource>${another}</resource></entry>
    </Bundle>`;

    const decoded = fromXml(xml);

    expect(decoded.map((item) => [item.entry, item.parsed.ok])).toEqual([
      [0, true],
      [1, false],
      [2, true],
    ]);
    expect(decoded[1]?.parsed).toMatchObject({
      problem: { field: 'entry[1].resource.resourceType' },
    });
    expect(decoded[2]?.parsed).toMatchObject({ value: { resourceId: 'bp-10' } });
  });
});

describe('fromXml on unsafe or unreadable documents', () => {
  it('refuses a DOCTYPE with nested entities (billion laughs)', () => {
    const xml = `<?xml version="1.0"?>
<!DOCTYPE AuditMessage [
  <!ENTITY a "aaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
]>
${AUDIT_MESSAGE.replace(/^<\?xml[^>]*>\n/, '').replace('ehr-1', '&b;')}`;

    expect(fromXml(xml)).toEqual([
      {
        parsed: {
          ok: false,
          problem: { field: '(document)', reason: expect.stringMatching(/DOCTYPE/) },
        },
        format: 'atna',
      },
    ]);
  });

  it('refuses an external entity (XXE) before reading anything', () => {
    const xml = `<?xml version="1.0"?>
<!DOCTYPE AuditEvent [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<AuditEvent xmlns="http://hl7.org/fhir"><id value="&x;"/></AuditEvent>`;

    const [decoded] = fromXml(xml);

    expect(decoded?.parsed).toEqual({
      ok: false,
      problem: { field: '(document)', reason: expect.stringMatching(/DOCTYPE/) },
    });
  });

  it('refuses XML that is not well-formed', () => {
    const [decoded] = fromXml(AUDIT_MESSAGE.replace('</AuditMessage>', '</AuditMesage>'));

    expect(decoded?.parsed).toEqual({
      ok: false,
      problem: { field: '(document)', reason: expect.stringMatching(/^is not well-formed XML/) },
    });
  });

  it('refuses a root element it does not know', () => {
    const [decoded] = fromXml('<Patient xmlns="http://hl7.org/fhir"><id value="p-31"/></Patient>');

    expect(decoded?.parsed).toMatchObject({ ok: false, problem: { field: '(document)' } });
  });
});
