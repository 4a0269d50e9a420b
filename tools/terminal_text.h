#ifndef STYLESWEEP_TOOLS_TERMINAL_TEXT_H_
#define STYLESWEEP_TOOLS_TERMINAL_TEXT_H_

// Text from a sweep file, an agent or a client (names, errors, log lines,
// parameter values) made safe to print on a terminal.

#include <string>
#include <string_view>

namespace stylesweep {

// `text` with nothing a terminal would act on: a tab becomes a space; every
// other C0 control character, DEL, a C1 control character (U+0080-U+009F)
// and a byte that is not part of valid UTF-8 becomes a visible escape
// ("\x1b", "\n", "\u009b"). Valid UTF-8 text is returned as it is. Callers
// that print several lines on purpose pass each line on its own.
std::string ForTerminal(std::string_view text);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_TERMINAL_TEXT_H_
