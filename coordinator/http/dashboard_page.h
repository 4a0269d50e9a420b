#ifndef STYLESWEEP_COORDINATOR_HTTP_DASHBOARD_PAGE_H_
#define STYLESWEEP_COORDINATOR_HTTP_DASHBOARD_PAGE_H_

#include <string_view>

namespace stylesweep {

// dashboard.html, compiled in (embed_file.cmake): the whole page, its CSS and
// its script, with no outside resources.
std::string_view DashboardPage();

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_HTTP_DASHBOARD_PAGE_H_
