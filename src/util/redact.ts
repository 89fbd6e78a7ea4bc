/** `scheme://user:pass@host` -> `scheme://host`, anywhere in a text. */
export function stripUrlCredentials(text: string): string {
  return text.replace(/(\b[a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/\s@]*@/g, '$1');
}
