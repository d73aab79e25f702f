/** Light, dark, or the system's: the choice is remembered in this browser. */
export type ThemeChoice = 'system' | 'light' | 'dark';

const KEY = 'run-hub-theme';
const systemDark = () => matchMedia('(prefers-color-scheme: dark)').matches;

export function savedTheme(): ThemeChoice {
  const saved = localStorage.getItem(KEY);
  return saved === 'light' || saved === 'dark' ? saved : 'system';
}

/** Applies a choice to the page (`data-theme` on <html>) and remembers it. */
export function applyTheme(choice: ThemeChoice): void {
  if (choice === 'system') localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, choice);
  const dark = choice === 'dark' || (choice === 'system' && systemDark());
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

/** Follows the system while it is the choice. */
export function followSystemTheme(): () => void {
  const media = matchMedia('(prefers-color-scheme: dark)');
  const onChange = () => savedTheme() === 'system' && applyTheme('system');
  media.addEventListener('change', onChange);
  return () => media.removeEventListener('change', onChange);
}
