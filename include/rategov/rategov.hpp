/// \file
/// Umbrella header: includes every public rategov header, nothing else.
#pragma once

#include <rategov/config.hpp>
