/** Who may read the audit log: reader API keys, and the people who oversee access to PHI. */
export const AUDIT_READERS = [
  'reader',
  'security_officer',
  'privacy_officer',
  'compliance',
  'auditor',
];
