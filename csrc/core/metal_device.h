// Facts about Metal devices that need no Metal to decide: which device a name picks, what to
// call its GPU family, and its peak memory bandwidth (for the evaluator's speed-of-light guard).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace metalrt::metal {

// `request` (METALRT_METAL_DEVICE): "" picks the system default (index -1 is returned); else a
// case-insensitive substring of one device's name, or its position as a number. Throws
// BackendUnavailable listing the devices when nothing or more than one device matches.
int select_device_index(const std::vector<std::string>& names, std::string_view request);

// DeviceInfo::target: "apple9" for the newest MTLGPUFamilyAppleN supported, "mac2" for a Mac
// family GPU only. `apple_family` is N (0 if none).
std::string gpu_target(int apple_family, bool mac2);

// Peak DRAM bandwidth in GB/s for Apple silicon, by the name MTLDevice reports ("Apple M3 Max");
// the higher figure where binned parts share a name, since the guard needs an upper bound.
// 0 when unknown.
double peak_bandwidth_gbs(std::string_view device_name);

}  // namespace metalrt::metal
