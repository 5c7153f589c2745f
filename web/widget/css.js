// The widget's styles. The bundle (internal/bundle) replaces this line with
// the contents of widget.css, as a string.
export const WIDGET_CSS = "";
